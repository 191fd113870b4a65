package client

import (
	"context"
	"errors"

	"github.com/exopeer/exopeer/api"
)

// The kinds of errors of contacts (see ErrNotInCell).
var (
	ErrBadCard          = errors.New("client: not a card, or a damaged one")
	ErrBadContactName   = errors.New("client: bad contact name")
	ErrNoContact        = errors.New("client: no such contact")
	ErrContactNameTaken = errors.New("client: another contact has that name")
	ErrStaleCard        = errors.New("client: the card is older than the contact's device list held")
	ErrOwnCard          = errors.New("client: the card is this cell's own")
	ErrNoDeviceList     = errors.New("client: the cell's device list is not signed yet")
	ErrTooManyInvites   = errors.New("client: too many contact invites open")
)

// CellCard returns this cell's card under name (empty: the cell's name).
func (c *Client) CellCard(ctx context.Context, name string) (api.ContactCard, error) {
	return Answer(c.calls.CellCardWithResponse(ctx, &api.CellCardParams{Name: name}))
}

// Contacts returns the cell's contacts, by name.
func (c *Client) Contacts(ctx context.Context) ([]api.ContactView, error) {
	return Answer(c.calls.ContactsListWithResponse(ctx))
}

// ContactAdd adds the cell of a card as a contact, named name (empty: the
// card's name), or updates the contact it already is.
func (c *Client) ContactAdd(ctx context.Context, card, name string) (api.ContactAdded, error) {
	return Answer(c.calls.ContactsAddWithResponse(ctx, api.ContactAddRequest{Card: card, Name: name}))
}

// Contact returns the contact named name.
func (c *Client) Contact(ctx context.Context, name string) (api.ContactView, error) {
	return Answer(c.calls.ContactsGetWithResponse(ctx, name))
}

// ContactRemove removes the contact named name and returns it as it was.
func (c *Client) ContactRemove(ctx context.Context, name string) (api.ContactView, error) {
	return Answer(c.calls.ContactsRemoveWithResponse(ctx, name))
}

// ContactVerify returns the safety number of the cell and the contact
// named name; with confirm, it marks the contact verified.
func (c *Client) ContactVerify(ctx context.Context, name string, confirm bool) (api.ContactSafety, error) {
	return Answer(c.calls.ContactsVerifyWithResponse(ctx, name, api.ContactVerifyRequest{Confirm: confirm}))
}

// ContactReceipts turns read receipts to the contact named name on or
// off and returns the contact.
func (c *Client) ContactReceipts(ctx context.Context, name string, on bool) (api.ContactView, error) {
	return Answer(c.calls.ContactsReceiptsWithResponse(ctx, name, api.ContactReceiptsRequest{On: on}))
}

// ContactInvite opens a one-time code for another cell to exchange cards
// with this one.
func (c *Client) ContactInvite(ctx context.Context, req api.ContactInviteRequest) (api.ContactInvite, error) {
	return Answer(c.calls.ContactsInviteWithResponse(ctx, req))
}

// ContactAccept exchanges cards with the cell of an invite code and adds
// it as a contact; it blocks until done or the request's timeout.
func (c *Client) ContactAccept(ctx context.Context, req api.ContactAcceptRequest) (api.ContactAdded, error) {
	return Answer(c.calls.ContactsAcceptWithResponse(ctx, req))
}
