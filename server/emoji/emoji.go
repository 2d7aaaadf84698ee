// Package emoji converts between Mattermost emoji names and Unicode, using
// the server's own emoji table so names match what Mattermost shows.
package emoji

import (
	"strconv"
	"strings"
	"sync"

	"github.com/mattermost/mattermost/server/public/model"
)

var (
	once      sync.Once
	byUnicode map[string]string
)

func load() {
	byUnicode = make(map[string]string, len(model.SystemEmojis))
	for name, code := range model.SystemEmojis {
		u := fromCodepoints(code)
		if u == "" {
			continue
		}
		// Several names share a codepoint; keep the shortest, then the first
		// in order, so the choice is stable.
		if old, ok := byUnicode[u]; !ok || len(name) < len(old) || (len(name) == len(old) && name < old) {
			byUnicode[u] = name
		}
	}
}

func fromCodepoints(code string) string {
	var b strings.Builder
	for part := range strings.SplitSeq(code, "-") {
		n, err := strconv.ParseUint(part, 16, 32)
		if err != nil {
			return ""
		}
		b.WriteRune(rune(n))
	}
	return b.String()
}

// Unicode returns the characters for a Mattermost system emoji name; ok is
// false for custom emoji and unknown names.
func Unicode(name string) (string, bool) {
	code, ok := model.SystemEmojis[name]
	if !ok {
		return "", false
	}
	u := fromCodepoints(code)
	return u, u != ""
}

// Name returns the Mattermost name for a Unicode emoji. Variation selectors
// (U+FE0F), which networks add or omit freely, are ignored.
func Name(u string) (string, bool) {
	once.Do(load)
	if n, ok := byUnicode[u]; ok {
		return n, true
	}
	n, ok := byUnicode[strings.ReplaceAll(u, "\ufe0f", "")]
	return n, ok
}

// ToName turns a reaction from any network into a Mattermost emoji name:
// names pass through, Unicode is looked up. ok is false when there is no
// Mattermost name for it.
func ToName(s string) (string, bool) {
	s = strings.Trim(s, ":")
	// System names and custom emoji names (IsValidEmojiName rejects system
	// names because it checks names for new custom emoji).
	if model.IsSystemEmojiName(s) || model.IsValidEmojiName(s) == nil {
		return s, true
	}
	return Name(s)
}
