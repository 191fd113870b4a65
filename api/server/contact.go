package server

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/exopeer/exopeer/api"
	"github.com/exopeer/exopeer/cell"
	"github.com/exopeer/exopeer/contact"
	contacts "github.com/exopeer/exopeer/contact/service"
)

// CellCard implements api.ServerInterface.
func (rt *routes) CellCard(w http.ResponseWriter, r *http.Request, params api.CellCardParams) {
	c, err := rt.node.Contacts().Card(r.Context(), params.Name)
	if err != nil {
		writeContactErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.ContactCard{
		Text: c.Text(), Name: c.Name, Cell: hex.EncodeToString(c.Cell()),
		Version: c.Devices.Version, Devices: deviceStrings(c.Devices),
	})
}

// ContactsList implements api.ServerInterface.
func (rt *routes) ContactsList(w http.ResponseWriter, r *http.Request) {
	cs, err := rt.node.Contacts().List(r.Context())
	if err != nil {
		writeContactErr(w, err)
		return
	}
	views := make([]api.ContactView, 0, len(cs))
	for _, c := range cs {
		views = append(views, contactView(c))
	}
	writeJSON(w, http.StatusOK, views)
}

// ContactsAdd implements api.ServerInterface.
func (rt *routes) ContactsAdd(w http.ResponseWriter, r *http.Request) {
	var req api.ContactAddRequest
	if !readJSON(w, r, maxRequestBody, &req) {
		return
	}
	a, err := rt.node.Contacts().Add(r.Context(), req.Card, req.Name)
	if err != nil {
		writeContactErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.ContactAdded{Contact: contactView(a.Contact), New: a.New, Updated: a.Updated})
}

// ContactsGet implements api.ServerInterface.
func (rt *routes) ContactsGet(w http.ResponseWriter, r *http.Request, name string) {
	c, err := rt.node.Contacts().Get(r.Context(), name)
	if err != nil {
		writeContactErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, contactView(c))
}

// ContactsRemove implements api.ServerInterface.
func (rt *routes) ContactsRemove(w http.ResponseWriter, r *http.Request, name string) {
	c, err := rt.node.Contacts().Remove(r.Context(), name)
	if err != nil {
		writeContactErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, contactView(c))
}

// ContactsVerify implements api.ServerInterface.
func (rt *routes) ContactsVerify(w http.ResponseWriter, r *http.Request, name string) {
	var req api.ContactVerifyRequest
	if !readJSON(w, r, maxRequestBody, &req) {
		return
	}
	c, n, err := rt.node.Contacts().Verify(r.Context(), name, req.Confirm)
	if err != nil {
		writeContactErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.ContactSafety{Contact: contactView(c), Number: n, Grouped: contact.GroupDigits(n)})
}

// ContactsReceipts implements api.ServerInterface.
func (rt *routes) ContactsReceipts(w http.ResponseWriter, r *http.Request, name string) {
	// api.ContactReceiptsRequest with "on" required: a missing one is
	// refused, not taken as false (off).
	var req struct {
		On *bool `json:"on"`
	}
	if !readJSON(w, r, maxRequestBody, &req) {
		return
	}
	if req.On == nil {
		writeProblem(w, http.StatusBadRequest, api.ProblemBadRequest, `"on" is required`)
		return
	}
	c, err := rt.node.Contacts().SetReceipts(r.Context(), name, *req.On)
	if err != nil {
		writeContactErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, contactView(c))
}

// ContactsInvite implements api.ServerInterface.
func (rt *routes) ContactsInvite(w http.ResponseWriter, r *http.Request) {
	var req api.ContactInviteRequest
	if !readJSON(w, r, maxRequestBody, &req) {
		return
	}
	code, exp, err := rt.node.Contacts().Invite(r.Context(), time.Duration(req.TTL))
	if err != nil {
		writeContactErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.ContactInvite{Code: code.String(), Expires: exp})
}

// ContactsAccept implements api.ServerInterface.
func (rt *routes) ContactsAccept(w http.ResponseWriter, r *http.Request) {
	var req api.ContactAcceptRequest
	if !readJSON(w, r, maxRequestBody, &req) {
		return
	}
	timeout := time.Duration(req.Timeout)
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	a, err := rt.node.Contacts().Accept(ctx, req.Code, req.Name)
	if err != nil {
		writeContactErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, api.ContactAdded{Contact: contactView(a.Contact), New: a.New, Updated: a.Updated})
}

func deviceStrings(l *contact.DeviceList) []string {
	out := make([]string, len(l.Devices))
	for i, d := range l.Devices {
		out[i] = d.String()
	}
	return out
}

func contactView(c contacts.Contact) api.ContactView {
	return api.ContactView{
		ID: c.ID.String(), Name: c.Name, CardName: c.CardName, Cell: hex.EncodeToString(c.Cell()),
		Version: c.Devices.Version, Devices: deviceStrings(c.Devices), Verified: c.Verified,
		Receipts: !c.ReceiptsOff, AddedBy: c.AddedBy, Added: c.Added,
	}
}

// contactKind maps the errors of contacts to a status and a problem type.
func contactKind(err error) (int, api.ProblemType) {
	switch {
	case errors.Is(err, cell.ErrNoCell):
		return http.StatusConflict, api.ProblemNotInCell
	case errors.Is(err, contact.ErrBadName):
		return http.StatusBadRequest, api.ProblemBadContactName
	case errors.Is(err, contact.ErrCardText), errors.Is(err, contact.ErrCardVersion),
		errors.Is(err, contact.ErrChecksum), errors.Is(err, contact.ErrBadCard),
		errors.Is(err, contact.ErrBadDeviceList), errors.Is(err, contact.ErrBadSignature):
		return http.StatusBadRequest, api.ProblemBadCard
	case errors.Is(err, contacts.ErrNoContact):
		return http.StatusNotFound, api.ProblemNoContact
	case errors.Is(err, contacts.ErrNameTaken):
		return http.StatusConflict, api.ProblemContactNameTaken
	case errors.Is(err, contact.ErrStale), errors.Is(err, contact.ErrConflict):
		return http.StatusConflict, api.ProblemStaleCard
	case errors.Is(err, contacts.ErrSelf):
		return http.StatusConflict, api.ProblemOwnCard
	case errors.Is(err, contacts.ErrNoDeviceList):
		return http.StatusConflict, api.ProblemNoDeviceList
	case errors.Is(err, contacts.ErrClosed):
		return http.StatusServiceUnavailable, api.ProblemUnavailable
	case errors.Is(err, contacts.ErrTooMany):
		return http.StatusInternalServerError, api.ProblemInternal
	case errors.Is(err, contacts.ErrInviteTTL):
		return http.StatusBadRequest, api.ProblemBadRequest
	case errors.Is(err, contacts.ErrTooManyInv):
		return http.StatusConflict, api.ProblemTooManyInvites
	case errors.Is(err, contact.ErrWrongCode):
		return http.StatusBadGateway, api.ProblemWrongCode
	case errors.Is(err, contacts.ErrNoInviter):
		return http.StatusBadGateway, api.ProblemTimeout
	}
	return storeKind(err)
}

func writeContactErr(w http.ResponseWriter, err error) {
	status, typ := contactKind(err)
	writeProblem(w, status, typ, err.Error())
}
