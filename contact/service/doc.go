// Package service is the contacts part of a node (package contact is its
// pure core): the cell's contacts, other cells it talks to, kept as store
// entities so that every device of the cell knows them, and the cell's
// own signed device list, which its cards carry.
//
// A contact is an entity with one exo.contact trait (store.ContactSchema):
// the name this cell calls it by (unique among its contacts), the
// contact's cell key, a signed device list of the contact (contact's wire
// form, in base64) with the list's version, the name on its card,
// whether its safety number was compared, whether read receipts go to
// it (SetReceipts; "receipts_off", absent and false by default:
// message/service sends none while it is true), and who added it when. The
// entity's ID is derived from the contact's cell key (the first 16 bytes
// of SHA-256 of "exopeer contact entity v1", 0, key), so two devices that
// add one cell write one entity, whose latest write of a trait in chain
// order wins.
//
// A newer device list of a contact (a newer card, or one a message
// carries) is written beside it as an exo.contact.devices trait
// (DeviceListType: cell key, version, list, writer) whose trait ID names
// the version ("devices." and the version in 20 digits), and the older
// versions read are then deleted. A read takes the newest list that
// verifies, is of the contact's cell and, in an exo.contact.devices
// trait, sits under its own version's ID, among all the entity holds (the
// exo.contact trait's included; of two lists of one version the one whose
// encoding sorts first). So whatever order the chain applies the writes
// of the cell's devices in, a device holding an older list that renames
// or verifies the contact, or writes the older list itself, brings back
// no older list: every device uses the newest valid list written anywhere
// in the cell. An older list is refused (contact.ErrStale), and the
// devices a newer one drops are no longer the contact's: message/service
// refuses their messages and drops its sessions with them at once (it
// watches the store's exo.contact entities, whichever device wrote the
// list, and sweeps at start and every minute).
//
// The cell's own device list is an entity with an exo.devices trait
// (store.DevicesSchema), its ID derived the same way from this cell's key
// ("exopeer devices entity v1"). An admin device (one holding the cell
// key) signs a list of every member on the roster when a card is asked
// of it or a contact is added on it, and from then on whenever the
// roster's version moves past the list's (it looks every Config.Check),
// so every member can print the cell's card. A cell that never used
// contacts writes no list.
//
// # Mailbox keys
//
// Every list an admin signs carries the cell's X25519 mailbox public key
// of the roster's key epoch (cell/core Secret.MailboxKey; contact's
// "EXD2" form), from which a contact derives the pair's blind mailboxes
// (package message/mailbox). The key is a function of the epoch, and a
// new epoch (a device removed) always comes with a new roster version,
// so the list signed for that version carries the new key, whether or
// not its devices changed. A list held without a key (an "EXD1" list an
// older binary signed) is signed again at its own version with the key
// (contact.Newer lets it replace the "EXD1" one; no other list of the
// same version may), at the upkeep's first look after start or when a
// card or list is asked of the admin, stored and sent as any new list
// (message/service sends it again to a device that acknowledged its
// version without the key). An admin that lacks its epoch's secret
// signs nothing (cell.ErrNoKey, logged by the upkeep) and hands out the
// list held. The exo.devices document also records, in
// "keys", the epochs whose keys the lists carried, each with when a list
// first carried it (at most maxPublishedKeys, the latest; a "keys" not so
// formed records nothing, and the list stands), so that
// MailboxKeys gives, for every epoch whose secret the node holds (all of
// them: the roster's history), the private key and the time its lists
// carried it and were replaced by a newer key's: what the reader of the
// cell's blind mailboxes needs to know which keys a contact may still
// write with. A contact's key is that of its list held
// (Contact.MailboxKey; contact.ErrNoMailbox for an "EXD1" list).
//
// # In memory
//
// List, Get and ByDevice (the contacts whose current device list names a
// device: a message's sender) are served from the contacts as one query
// read them, decoded and their lists verified once, by name and by
// device, kept while the store's TypesVersion of exo.contact and
// exo.contact.devices stays the same (on a node whose own index answers
// its reads; a node that reads from a store member queries every time).
// So a device a newer list drops is no longer any contact's as soon as
// that list is in this node's index, whichever device of the cell wrote
// it. The set is replaced whole, never changed in place, and the
// service's own writes drop it before they return; MaxContacts bounds
// it. The cell's own device list (DeviceList, read on every send) is
// kept the same way under exo.devices.
package service
