package peer

import (
	"time"

	"github.com/exopeer/exopeer/chain/replica"
)

// ChainStatus is the answer of /v1/chain/status: replica.Status with peer
// IDs and CIDs as strings.
type ChainStatus struct {
	Cell    string   `json:"cell"`
	Length  int      `json:"length"`
	Heads   []string `json:"heads"`
	Waiting int      `json:"waiting"` // entries received whose parents are missing
	// Authors is every author of the chain and its last sequence number.
	Authors []ChainAuthor `json:"authors"`
	// Members is the cell's members (this node too) and what each holds,
	// by what it last announced.
	Members []ChainMember `json:"members"`
	Forks   []ChainFork   `json:"forks,omitempty"`
	Sync    ChainSync     `json:"sync"`
}

// ChainAuthor is one author's part of the chain.
type ChainAuthor struct {
	Peer    string `json:"peer"`
	Name    string `json:"name,omitempty"` // empty for a former member
	LastSeq uint64 `json:"lastSeq"`
}

// ChainMember is what the node knows of a member's chain.
type ChainMember struct {
	Peer  string `json:"peer"`
	Name  string `json:"name"`
	Self  bool   `json:"self,omitempty"`
	State string `json:"state,omitempty"` // in gossip: alive, suspect, dead, left
	// Known is false until the member announced its chain.
	Known  bool       `json:"known"`
	Length uint64     `json:"length"`
	Heard  *time.Time `json:"heard,omitempty"`
	// Behind is how many entries the node holds that the member lacked
	// when it last announced; Ahead that it held some the node lacks.
	Behind int  `json:"behind"`
	Ahead  bool `json:"ahead,omitempty"`
}

// ChainFork is a forked author: entries with one sequence number.
type ChainFork struct {
	Author string   `json:"author"`
	Seq    uint64   `json:"seq"`
	CIDs   []string `json:"cids"`
}

// ChainSync counts what sync did since the node started.
type ChainSync struct {
	Pulls              uint64     `json:"pulls"`
	PullErrors         uint64     `json:"pullErrors"`
	Served             uint64     `json:"served"`
	Received           uint64     `json:"received"`
	Sent               uint64     `json:"sent"`
	Deferred           uint64     `json:"deferred"`
	Rejected           uint64     `json:"rejected"`
	Banned             uint64     `json:"banned"`
	AnnouncesSent      uint64     `json:"announcesSent"`
	AnnouncesSeen      uint64     `json:"announcesSeen"`
	LastRejected       string     `json:"lastRejected,omitempty"`
	LastRejectedAuthor string     `json:"lastRejectedAuthor,omitempty"`
	LastRejectedFrom   string     `json:"lastRejectedFrom,omitempty"`
	LastRejectedAt     *time.Time `json:"lastRejectedAt,omitempty"`
	LastBanned         string     `json:"lastBanned,omitempty"`
	LastBannedBecause  string     `json:"lastBannedBecause,omitempty"`
}

func chainStatus(st replica.Status) ChainStatus {
	v := ChainStatus{Cell: st.Cell, Length: st.Length, Heads: []string{}, Waiting: st.Waiting,
		Authors: []ChainAuthor{}, Members: []ChainMember{}}
	for _, h := range st.Heads {
		v.Heads = append(v.Heads, h.String())
	}
	for _, a := range st.Authors {
		v.Authors = append(v.Authors, ChainAuthor{Peer: a.Peer.String(), Name: a.Name, LastSeq: a.LastSeq})
	}
	for _, m := range st.Members {
		mv := ChainMember{Peer: m.Peer.String(), Name: m.Name, Self: m.Self, State: m.State, Known: m.Known,
			Length: m.Length, Behind: m.Behind, Ahead: m.Ahead}
		if !m.Heard.IsZero() {
			mv.Heard = &m.Heard
		}
		v.Members = append(v.Members, mv)
	}
	for _, f := range st.Forks {
		fv := ChainFork{Author: f.Author.String(), Seq: f.Seq}
		for _, c := range f.CIDs {
			fv.CIDs = append(fv.CIDs, c.String())
		}
		v.Forks = append(v.Forks, fv)
	}
	s := st.Sync
	v.Sync = ChainSync{Pulls: s.Pulls, PullErrors: s.PullErrors, Served: s.Served, Received: s.Received,
		Sent: s.Sent, Deferred: s.Deferred, Rejected: s.Rejected, Banned: s.Banned,
		AnnouncesSent: s.AnnouncesSent, AnnouncesSeen: s.Seen, LastRejected: s.LastRejected,
		LastBannedBecause: s.LastBannedBecause}
	if s.LastRejectedAuthor != "" {
		v.Sync.LastRejectedAuthor = s.LastRejectedAuthor.String()
	}
	if s.LastRejectedFrom != "" {
		v.Sync.LastRejectedFrom = s.LastRejectedFrom.String()
	}
	if !s.LastRejectedAt.IsZero() {
		v.Sync.LastRejectedAt = &s.LastRejectedAt
	}
	if s.LastBanned != "" {
		v.Sync.LastBanned = s.LastBanned.String()
	}
	return v
}
