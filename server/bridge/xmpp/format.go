package xmpp

import "github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/styling"

// maxBody is the largest message body the bridge reads.
func (c Config) maxBody() int { return 256 << 10 }

// fromMarkdown turns Mattermost markdown into an XMPP body that reads well
// with XEP-0393 styling.
func fromMarkdown(md string) string { return styling.FromMarkdown(md) }

// toMarkdown turns an XEP-0393 styled body into Mattermost markdown.
func toMarkdown(body string) string { return styling.ToMarkdown(body) }
