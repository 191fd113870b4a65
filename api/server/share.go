package server

import (
	"net/http"

	"github.com/exopeer/exopeer/api"
	messages "github.com/exopeer/exopeer/message/service"
)

// ContactsShare implements api.ServerInterface: it shares one of the
// cell's files with a contact, in a message.
func (rt *routes) ContactsShare(w http.ResponseWriter, r *http.Request, name string) {
	var req api.ShareRequest
	if !readJSON(w, r, maxRequestBody, &req) {
		return
	}
	f, err := rt.node.Blobs().File(r.Context(), req.File)
	if err != nil {
		writeBlobErr(w, err)
		return
	}
	m, err := rt.node.Messages().SendFile(r.Context(), name, messages.File{
		Cap: f.Cap.String(), Name: f.Name, Size: f.Size, Media: f.MediaType,
	}, req.Text)
	if err != nil {
		writeMessageErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, messageView(m))
}

// sharedFile is the view of a message's file; nil for none.
func sharedFile(f *messages.File) *api.SharedFile {
	if f == nil {
		return nil
	}
	return &api.SharedFile{Cap: f.Cap, Name: f.Name, Size: f.Size, MediaType: f.Media}
}
