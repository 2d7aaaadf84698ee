package emoji

import (
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
)

func TestToMattermost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+1", "+1"},
		// Mattermost's own name of the emoji, as the other bridges give it
		// (emoji.Name), so 👍 from Slack and from XMPP are one reaction.
		{"thumbsup", "+1"},
		{":smile:", "smile"},
		{"+1::skin-tone-2", "+1_light_skin_tone"},
		{"thumbsup::skin-tone-6", "+1_dark_skin_tone"},
		{"wave::skin-tone-3", "wave_medium_light_skin_tone"},
		{"wave::skin-tone-5", "wave_medium_dark_skin_tone"},
		{"people_holding_hands::skin-tone-2-4", "people_holding_hands_light_skin_tone_medium_skin_tone"},
		// Same tone for both people: Mattermost spells it twice here.
		{"people_holding_hands::skin-tone-3", "people_holding_hands_medium_light_skin_tone_medium_light_skin_tone"},
		{"people_holding_hands::skin-tone-3-3", "people_holding_hands_medium_light_skin_tone_medium_light_skin_tone"},
		{"skin-tone-2", "skin-tone-2"},
		{"men-with-bunny-ears-partying", "dancing_men"},
		// A tone Mattermost does not have keeps the emoji.
		{"heart::skin-tone-2", "heart"},
		{"party-parrot", "party-parrot"},       // custom
		{"melting_face", "melting_face"},       // newer than Mattermost's table
		{"+1::skin-tone-9", "+1::skin-tone-9"}, // malformed: unchanged
		{"custom::skin-tone-2", "custom::skin-tone-2"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := ToMattermost(tt.in); got != tt.want {
			t.Errorf("ToMattermost(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestToSlack(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+1", "+1"},
		{"thumbsup", "thumbsup"},
		{"smile", "smile"},
		{":fu:", "middle_finger"},
		{"hugs", "hugging_face"},
		{"1st_place_medal", "first_place_medal"},
		{"construction_worker_man", "male-construction-worker"},
		{"afghanistan", "flag-af"},
		{"us", "flag-us"},
		{"flag-de", "flag-de"},
		{"+1_light_skin_tone", "+1::skin-tone-2"},
		{"thumbsup_medium_dark_skin_tone", "thumbsup::skin-tone-5"},
		{"wave_medium_skin_tone", "wave::skin-tone-4"},
		{"fist_raised_medium_light_skin_tone", "fist::skin-tone-3"},
		{"people_holding_hands_light_skin_tone_medium_skin_tone", "people_holding_hands::skin-tone-2-4"},
		{"skin-tone-2", "skin-tone-2"},
		{"my_custom_light_skin_tone", "my_custom_light_skin_tone"}, // custom: unchanged
		{"party-parrot", "party-parrot"},
	}
	for _, tt := range tests {
		if got := ToSlack(tt.in); got != tt.want {
			t.Errorf("ToSlack(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Every Mattermost system emoji survives a trip through Slack's name, except
// aliases, which come back as the name Slack and Mattermost share.
func TestRoundTripKeepsTheEmoji(t *testing.T) {
	for name, code := range model.SystemEmojis {
		back := ToMattermost(ToSlack(name))
		if back == name {
			continue
		}
		if got, ok := model.SystemEmojis[back]; !ok || got != code {
			t.Errorf("%q -> %q -> %q (%s, want %s)", name, ToSlack(name), back, got, code)
		}
	}
}

// The table only holds names that differ.
func TestTableHoldsOnlyDifferences(t *testing.T) {
	for mm, slack := range slackNames {
		if !model.IsSystemEmojiName(mm) {
			t.Errorf("slackNames key %q is not a Mattermost emoji", mm)
		}
		if mm == slack {
			t.Errorf("slackNames[%q] maps to itself", mm)
		}
	}
	for slack, mm := range mattermostNames {
		if model.IsSystemEmojiName(slack) || !model.IsSystemEmojiName(mm) {
			t.Errorf("mattermostNames[%q] = %q", slack, mm)
		}
	}
}
