package store

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

// Key layout
//
// Every record lives under a key made of a short type prefix and one or two
// components, separated by ':'. The layout carries no version number: a
// change of layout is a schema migration (see schema.go).
//
//	schema_version                  schema version, decimal ("1")
//	lock:migrate                    migration lock (random token, expires)
//	l:<channel>                     Link, by Mattermost channel ID
//	r:<network>:<room>              roomClaim: remote room -> channel (reverse of l:)
//	u:<network>:<remoteID>          RemoteUser, by network and remote identity
//	um:<user>                       remoteUserRef: Mattermost user -> u: key parts
//	gh:<network>:<user>             Ghost, by network and Mattermost user ID
//	m:<sha256(message ref)>         msgPointer: one message -> its bridged message
//	g:<sha256(origin ref)>          msgGroup: origin ref and every copy
//	c:<link>:<name>                 cursor value
//	s:<namespace>:<id>              seen marker (idempotency)
//	a:<namespace>:<key>             alias: a network's second name for a thing
//	p:<namespace>:<id>              pendingRecord: work accepted, not yet done (pending.go)
//	lease:<name>                    Lease: the node holding a piece of work (expires; lease.go)
//
// A component is written verbatim when it is short (<= maxVerbatim bytes) and
// made only of the characters in isSafe (lower-case ASCII letters, digits and
// "-_.@/"): Mattermost IDs and network names always are. Anything else (long
// JIDs, Matrix room IDs with upper-case letters or ':', Slack IDs, non-ASCII)
// becomes '#' followed by the lower-case hex SHA-256 of the value. Because a
// verbatim component never contains '#' or ':', the encoding is injective and
// a key splits unambiguously; because neither form has upper-case letters,
// keys stay distinct under a case-insensitive database collation. Message refs
// have three parts and are always hashed (length-prefixed, so a '|' inside a
// room or ID cannot make two refs collide).
//
// Hashing is deterministic, so every node computes the same key. The records
// always hold the full, unhashed values, so nothing is lost and readers check
// them. The longest key is a two-component one: 3 + 65 + 1 + 65 = 134 runes,
// within model.KeyValueKeyMaxRunes (150).
//
// Listing by type walks every page of KVList and filters by prefix; all
// prefixes end in ':' (and none is another plus more letters), so a prefix
// never matches another type's keys.

const (
	keySchemaVersion = "schema_version"
	keyMigrateLock   = "lock:migrate"
	// keyLinkIndex lists the channel IDs of every link (schema 2), so that
	// listing the links does not walk every key.
	keyLinkIndex = "link_index"

	prefixLink       = "l:"
	prefixRoom       = "r:"
	prefixRemoteUser = "u:"
	prefixUserByMM   = "um:"
	prefixGhost      = "gh:"
	prefixMessage    = "m:"
	prefixGroup      = "g:"
	prefixCursor     = "c:"
	prefixSeen       = "s:"
	prefixAlias      = "a:"

	// maxVerbatim is the longest component written as is; longer ones are
	// hashed (65 runes).
	maxVerbatim = 64
)

func isSafe(c byte) bool {
	return ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') ||
		c == '-' || c == '_' || c == '.' || c == '@' || c == '/'
}

// component encodes one variable part of a key (see the layout above).
func component(s string) string {
	if s != "" && len(s) <= maxVerbatim {
		safe := true
		for i := 0; i < len(s); i++ {
			if !isSafe(s[i]) {
				safe = false
				break
			}
		}
		if safe {
			return s
		}
	}
	sum := sha256.Sum256([]byte(s))
	return "#" + hex.EncodeToString(sum[:])
}

// hashParts hashes parts unambiguously: each is length-prefixed.
func hashParts(parts ...string) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func join(prefix string, parts ...string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(component(p))
	}
	return b.String()
}

func linkKey(channelID string) string { return join(prefixLink, channelID) }

func roomKey(network bridge.Network, room string) string {
	return join(prefixRoom, string(network), room)
}

func remoteUserKey(network bridge.Network, remoteID string) string {
	return join(prefixRemoteUser, string(network), remoteID)
}

func userByMMKey(userID string) string { return join(prefixUserByMM, userID) }

func ghostKey(network bridge.Network, userID string) string {
	return join(prefixGhost, string(network), userID)
}

// ghostPrefix is the prefix of every ghost key of network.
func ghostPrefix(network bridge.Network) string { return join(prefixGhost, string(network)) + ":" }

func messageKey(ref bridge.Ref) string {
	return prefixMessage + hashParts(string(ref.Network), ref.Room, ref.ID)
}

func groupKey(origin bridge.Ref) string {
	return prefixGroup + hashParts(string(origin.Network), origin.Room, origin.ID)
}

func cursorKey(linkID, name string) string { return join(prefixCursor, linkID, name) }

// cursorPrefix is the prefix of every cursor key of linkID.
func cursorPrefix(linkID string) string { return join(prefixCursor, linkID) + ":" }

func seenKey(namespace, id string) string { return join(prefixSeen, namespace, id) }

func aliasKey(namespace, key string) string { return join(prefixAlias, namespace, key) }
