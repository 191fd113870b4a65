package cell

import (
	"crypto/ed25519"

	"github.com/exopeer/exopeer/cell/core"
)

// The cell's values and rules are those of its pure core, package
// cell/core; the service speaks of them by these names.

// Types of the core.
type (
	Role    = core.Role
	Member  = core.Member
	Former  = core.Former
	Cutoff  = core.Cutoff
	Roster  = core.Roster
	Founder = core.Founder
	Secret  = core.Secret
	Keys    = core.Keys
	BoxKey  = core.BoxKey
	Code    = core.Code
)

// Roles and limits of a roster.
const (
	RoleAdmin   = core.RoleAdmin
	RoleChain   = core.RoleChain
	RoleStore   = core.RoleStore
	RoleRelay   = core.RoleRelay
	RoleMailbox = core.RoleMailbox

	MaxMembers   = core.MaxMembers
	MaxFormer    = core.MaxFormer
	MaxLast      = core.MaxLast
	MaxNameLen   = core.MaxNameLen
	MaxRosterLen = core.MaxRosterLen
	SecretLen    = core.SecretLen
)

// Errors of the core, the same values.
var (
	ErrBadRoster       = core.ErrBadRoster
	ErrBadSignature    = core.ErrBadSignature
	ErrOtherCell       = core.ErrOtherCell
	ErrStaleRoster     = core.ErrStaleRoster
	ErrNotMember       = core.ErrNotMember
	ErrNotAdmin        = core.ErrNotAdmin
	ErrNoCell          = core.ErrNoCell
	ErrAlreadyInCell   = core.ErrAlreadyInCell
	ErrNoKey           = core.ErrNoKey
	ErrDecrypt         = core.ErrDecrypt
	ErrBadCode         = core.ErrBadCode
	ErrBadMessage      = core.ErrBadMessage
	ErrNoInvite        = core.ErrNoInvite
	ErrInviteExpired   = core.ErrInviteExpired
	ErrInviteExhausted = core.ErrInviteExhausted
	ErrWrongCode       = core.ErrWrongCode
	ErrJoinRefused     = core.ErrJoinRefused
	ErrWelcomeLost     = core.ErrWelcomeLost
)

// ParseCode parses an invite code as a person types it (core.ParseCode).
func ParseCode(s string) (Code, error) { return core.ParseCode(s) }

// ParseRoles reads a comma-separated list of role names (core.ParseRoles).
func ParseRoles(s string) (Role, error) { return core.ParseRoles(s) }

// DecodeRoster parses and verifies a roster's wire form (core.DecodeRoster).
func DecodeRoster(b []byte) (*Roster, error) { return core.DecodeRoster(b) }

// NewKeys returns an empty key set of a cell (core.NewKeys).
func NewKeys(cell ed25519.PublicKey) *Keys { return core.NewKeys(cell) }
