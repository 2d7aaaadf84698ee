package matrix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
)

func sniff(data []byte) string { return http.DetectContentType(data) }

// upload puts an attachment in the media repository and returns the event
// that shows it.
func (b *Bridge) upload(ctx context.Context, intent *appservice.IntentAPI, a bridge.Attachment) (*event.MessageEventContent, error) {
	data, err := bridge.ReadAttachment(ctx, a, b.cfg.MaxFileSize)
	if err != nil {
		return nil, err
	}
	mime := a.MIMEType
	if mime == "" {
		mime = sniff(data)
	}
	up, err := intent.UploadMedia(ctx, mautrix.ReqUploadMedia{ContentBytes: data, ContentType: mime, FileName: a.Name})
	if err != nil {
		return nil, fmt.Errorf("matrix: upload %q: %w", a.Name, err)
	}
	msgType := event.MsgFile
	switch {
	case strings.HasPrefix(mime, "image/"):
		msgType = event.MsgImage
	case strings.HasPrefix(mime, "video/"):
		msgType = event.MsgVideo
	case strings.HasPrefix(mime, "audio/"):
		msgType = event.MsgAudio
	}
	return &event.MessageEventContent{
		MsgType: msgType, Body: a.Name, FileName: a.Name,
		URL:  up.ContentURI.CUString(),
		Info: &event.FileInfo{MimeType: mime, Size: len(data)},
	}, nil
}

// attachment describes a file event; its bytes are fetched only by a
// destination that takes files.
func (b *Bridge) attachment(c *event.MessageEventContent) (bridge.Attachment, error) {
	if c.File != nil {
		return bridge.Attachment{}, fmt.Errorf("%w: encrypted files are not supported", errBadEvent)
	}
	uri, err := c.URL.Parse()
	if err != nil || uri.IsEmpty() {
		return bridge.Attachment{}, fmt.Errorf("%w: file without a valid mxc:// URL", errBadEvent)
	}
	a := bridge.Attachment{Name: c.FileName}
	if a.Name == "" {
		a.Name = c.Body
	}
	if a.Name == "" {
		a.Name = "file"
	}
	if c.Info != nil {
		a.MIMEType, a.Size = c.Info.MimeType, int64(c.Info.Size)
	}
	limit := b.cfg.MaxFileSize
	a.Open = func(ctx context.Context) (io.ReadCloser, error) { return b.download(ctx, uri, limit) }
	return a, nil
}

// download fetches media with authentication (Matrix 1.11), falling back
// to the older unauthenticated endpoint on homeservers without it. limit
// <= 0 means no limit.
func (b *Bridge) download(ctx context.Context, uri id.ContentURI, limit int64) (io.ReadCloser, error) {
	cli := b.as.BotClient()
	resp, err := cli.Download(ctx, uri)
	if err != nil && (errors.Is(err, mautrix.MUnrecognized) || isStatus(err, http.StatusNotFound, http.StatusMethodNotAllowed)) {
		_, resp, err = cli.MakeFullRequestWithResp(ctx, mautrix.FullRequest{
			Method:           http.MethodGet,
			URL:              cli.BuildURL(mautrix.MediaURLPath{"v3", "download", uri.Homeserver, uri.FileID}),
			DontReadResponse: true,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("matrix: download %s: %w", uri, err)
	}
	if limit > 0 && resp.ContentLength > limit {
		resp.Body.Close()
		return nil, bridge.Dropf(bridge.ReasonTooLarge, "matrix: %s is %d bytes, over the %d-byte limit", uri, resp.ContentLength, limit)
	}
	if limit <= 0 {
		return resp.Body, nil
	}
	// A chunked body has no Content-Length: it is over the limit only once
	// read.
	return bridge.RefuseOver(resp.Body, limit, uri.String()), nil
}

func isStatus(err error, codes ...int) bool {
	var httpErr mautrix.HTTPError
	if !errors.As(err, &httpErr) || httpErr.Response == nil {
		return false
	}
	for _, c := range codes {
		if httpErr.Response.StatusCode == c {
			return true
		}
	}
	return false
}
