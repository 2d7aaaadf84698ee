package xmpp

import "regexp"

// maxBody is the largest message body the bridge reads.
func (c Config) maxBody() int { return 256 << 10 }

var (
	mdBold   = regexp.MustCompile(`\*\*([^*\n]+)\*\*`)
	mdStrike = regexp.MustCompile(`~~([^~\n]+)~~`)
	xsBold   = regexp.MustCompile(`(^|[\s(])\*([^\s*][^*\n]*[^\s*]|[^\s*])\*($|[\s).,!?:;])`)
	xsStrike = regexp.MustCompile(`(^|[\s(])~([^\s~][^~\n]*[^\s~]|[^\s~])~($|[\s).,!?:;])`)
)

// fromMarkdown turns Mattermost markdown into an XMPP body that reads well
// with XEP-0393 styling.
func fromMarkdown(md string) string {
	s := mdBold.ReplaceAllString(md, "*$1*")
	return mdStrike.ReplaceAllString(s, "~$1~")
}

// toMarkdown turns an XEP-0393 styled body into Mattermost markdown.
func toMarkdown(body string) string {
	s := xsBold.ReplaceAllString(body, "$1**$2**$3")
	return xsStrike.ReplaceAllString(s, "$1~~$2~~$3")
}
