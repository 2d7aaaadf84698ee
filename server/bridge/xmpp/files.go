package xmpp

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/httpfile"
)

// Files go out through the server's XEP-0363 upload service, as a link in
// the body with an XEP-0066 out-of-band element, which is what XMPP clients
// show inline. Incoming out-of-band links are fetched and attached.

// fetcher returns the HTTP client side for uploads and downloads. Links
// people post may point anywhere, so private addresses are refused, except
// the exact addresses (host and port) of the upload service the XMPP server
// advertised, which may well live on one. Other ports of the XMPP server's
// host are other services, and stay out of reach.
func (b *Bridge) fetcher() *httpfile.Fetcher {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.files != nil {
		return b.files
	}
	tc, err := b.cfg.tlsConfig("")
	if err != nil {
		tc = nil
	}
	if tc != nil {
		tc.ServerName = "" // per request, from the URL
	}
	b.files = &httpfile.Fetcher{TLSConfig: tc, AllowedAddrs: b.uploadAddrs, AllowPrivate: b.testAllowPrivateFiles}
	return b.files
}

// discoverUpload finds the server's upload service, and the addresses it
// serves files at, once per connection; done is closed when it is known.
func (b *Bridge) discoverUpload(ctx context.Context, s *xmpp.Session, done chan struct{}) {
	defer close(done)
	b.mu.Lock()
	b.uploadRefusal = "" // learnt again for this session
	b.mu.Unlock()
	domain := s.LocalAddr().Domain()
	var from jid.JID
	if b.cfg.Mode == ModeComponent {
		// A component names itself on every stanza, and the server's
		// services live on the component's parent domain.
		from = b.selfJID(s)
		if _, parent, ok := strings.Cut(b.cfg.ComponentDomain.Domainpart(), "."); ok {
			if d, err := jid.New("", parent, ""); err == nil {
				domain = d
			}
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	svc, err := httpfile.DiscoverAs(dctx, s, from, domain)
	var addrs []string
	if err == nil {
		var aerr error
		if addrs, aerr = svc.Addrs(dctx, s); aerr != nil {
			b.log.Info("Could not learn the XMPP upload service's address; files on a private address will not be fetched", "service", svc.JID.String(), "reason", aerr.Error())
			var refused stanza.Error
			if errors.As(aerr, &refused) && refused.Type != stanza.Wait {
				b.noteUploadRefused(svc.JID, refused)
			}
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.files = nil // rebuild with the service's addresses allowed
	if err != nil {
		b.uploadSvc, b.uploadAddrs = nil, nil
		b.uploadRefusal = fmt.Sprintf("no upload service found on %s (%v): files are named, not sent", domain, err)
		b.log.Info("No XMPP upload service; files will be named, not sent", "domain", domain.String(), "reason", err.Error())
		return
	}
	b.uploadSvc, b.uploadAddrs = &svc, addrs
}

// uploadService is the server's upload service, nil if it has none. Right
// after connecting it waits (up to ctx) until discoverUpload knows.
func (b *Bridge) uploadService(ctx context.Context) *httpfile.Service {
	b.mu.Lock()
	known := b.uploadKnown
	b.mu.Unlock()
	if known != nil {
		select {
		case <-known:
		case <-ctx.Done():
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.uploadSvc
}

func (b *Bridge) uploadAll(ctx context.Context, s *xmpp.Session, atts []bridge.Attachment) (urls, notes []string, err error) {
	if len(atts) == 0 {
		return nil, nil, nil
	}
	svc := b.uploadService(ctx)
	for _, a := range atts {
		if svc == nil {
			notes = append(notes, fmt.Sprintf("(file %s not sent: the XMPP server has no upload service)", a.Name))
			continue
		}
		if svc.MaxSize > 0 && a.Size > svc.MaxSize {
			notes = append(notes, fmt.Sprintf("(file %s too large for the XMPP server: %d bytes)", a.Name, a.Size))
			continue
		}
		// Read whole or not at all: a file cut at a limit must not go out
		// as if it were the file. (A service that names no limit has
		// MaxSize 0.)
		limit := b.cfg.MaxFileSize
		if svc.MaxSize > 0 && (limit <= 0 || svc.MaxSize < limit) {
			limit = svc.MaxSize
		}
		data, rerr := bridge.ReadAttachment(ctx, a, limit)
		if bridge.DropCode(rerr) == bridge.ReasonTooLarge {
			notes = append(notes, fmt.Sprintf("(file %s too large for the XMPP server: over %d bytes)", a.Name, limit))
			continue
		}
		if rerr != nil {
			return nil, nil, rerr
		}
		url, uerr := svc.Upload(ctx, s, a.Name, a.MIMEType, int64(len(data)), bytes.NewReader(data), b.fetcher().Client())
		var refused stanza.Error
		if errors.As(uerr, &refused) && refused.Type != stanza.Wait {
			// The service said no to this sender (not "later"): asking again
			// would hold the room's queue forever.
			notes = append(notes, fmt.Sprintf("(file %s not sent: the XMPP server's upload service refused it)", a.Name))
			b.noteUploadRefused(svc.JID, refused)
			continue
		}
		if uerr != nil {
			return nil, nil, fmt.Errorf("upload %s: %w", a.Name, uerr)
		}
		urls = append(urls, url)
	}
	return urls, notes, nil
}

// noteUploadRefused keeps, for status, the last refusal of an upload slot.
func (b *Bridge) noteUploadRefused(service jid.JID, e stanza.Error) {
	why := string(e.Condition)
	for _, text := range e.Text {
		if text != "" {
			why += ": " + text
			break
		}
	}
	b.log.Warn("The XMPP upload service refused a file; the message names it instead", "service", service.String(), "reason", why)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.uploadRefusal = fmt.Sprintf("the upload service %s refused the bridge's files (%s), which are named instead of sent", service, why)
	if b.cfg.Mode == ModeComponent {
		b.uploadRefusal += "; let the component " + b.cfg.ComponentDomain.String() + " upload (Prosody 13: http_file_share_access; ejabberd: mod_http_upload's access)"
	}
}

// oobPayload is one out-of-band element per URL.
func oobPayload(urls []string) []xml.TokenReader {
	out := make([]xml.TokenReader, 0, len(urls))
	for _, u := range urls {
		out = append(out, httpfile.OOB(u, ""))
	}
	return out
}

// maxDownloads bounds the files fetched at once, across rooms.
const maxDownloads = 4

// fetchAll downloads the files a room message links out of band, each to a
// file on disk rather than into memory. A link that cannot be fetched stays
// in the text. cleanup removes the files once every destination has them.
func (b *Bridge) fetchAll(ctx context.Context, text string, urls []string) (string, []bridge.Attachment, func()) {
	var atts []bridge.Attachment
	var paths []string
	for _, u := range urls {
		a, path, err := b.download(ctx, u)
		if err != nil {
			b.log.Info("Could not fetch a file linked in an XMPP room", "url", u, "error", err.Error())
			if !strings.Contains(text, u) {
				text = strings.TrimSpace(text + "\n" + u)
			}
			continue
		}
		atts, paths = append(atts, a), append(paths, path)
		// Clients put the link in the body for those without OOB support;
		// the attachment replaces it.
		text = strings.TrimSpace(strings.ReplaceAll(text, u, ""))
	}
	return text, atts, func() {
		for _, p := range paths {
			_ = os.Remove(p)
		}
	}
}

// download fetches u to a file in the bridge's folder, once at most
// maxDownloads run. The attachment reads that file; should it be gone (the
// message was held back and read again, or the bridge restarted), it
// fetches u again.
func (b *Bridge) download(ctx context.Context, u string) (bridge.Attachment, string, error) {
	select {
	case b.downloads <- struct{}{}:
	case <-ctx.Done():
		return bridge.Attachment{}, "", ctx.Err()
	}
	defer func() { <-b.downloads }()
	f, err := os.CreateTemp(b.fileDir, "oob-*")
	if err != nil {
		return bridge.Attachment{}, "", err
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	info, err := b.fetcher().FetchTo(fctx, u, b.cfg.MaxFileSize, f)
	cancel()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return bridge.Attachment{}, "", err
	}
	path, limit := f.Name(), b.cfg.MaxFileSize
	return bridge.Attachment{
		Name: info.Name, MIMEType: info.ContentType, Size: info.Size,
		Open: func(ctx context.Context) (io.ReadCloser, error) {
			if file, err := os.Open(path); err == nil {
				return file, nil
			}
			return b.refetch(ctx, u, limit), nil
		},
	}, path, nil
}

// refetch streams u again, for a file whose copy on disk is gone.
func (b *Bridge) refetch(ctx context.Context, u string, limit int64) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		_, err := b.fetcher().FetchTo(ctx, u, limit, pw)
		pw.CloseWithError(err)
	}()
	return pr
}
