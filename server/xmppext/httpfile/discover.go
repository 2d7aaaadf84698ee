package httpfile

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"mellium.im/xmpp"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/upload"
)

// NS is the XEP-0363 namespace: the upload service's disco#info feature, the
// FORM_TYPE of its extended information, and the namespace of slot requests.
const NS = upload.NS

// maxItems bounds how many of a server's disco#items Discover asks about.
// Servers list a handful of services; a long list is of rooms or nodes.
const maxItems = 64

// Service is a XEP-0363 HTTP upload service.
type Service struct {
	// JID is the service's address, such as upload.example.org.
	JID jid.JID
	// MaxSize is the largest file, in bytes, the service accepts, or 0 when
	// it did not say. Upload refuses bigger files itself; the service
	// refuses them anyway.
	MaxSize int64
	// From, when set, is the sender of slot requests (see DiscoverAs).
	From jid.JID
}

// discoInfo is the part of a disco#info result that Discover reads. It is
// decoded here rather than with disco.GetInfo because mellium's data form
// decoder fails on elements it does not know, which would make one odd
// service hide the others.
type discoInfo struct {
	Features []struct {
		Var string `xml:"var,attr"`
	} `xml:"http://jabber.org/protocol/disco#info feature"`
	Forms []struct {
		Fields []struct {
			Var    string   `xml:"var,attr"`
			Values []string `xml:"value"`
		} `xml:"field"`
	} `xml:"jabber:x:data x"`
}

// upload reports whether the info is of an upload service, and its limit.
func (i *discoInfo) upload() (ok bool, maxSize int64) {
	for _, f := range i.Features {
		if f.Var == NS {
			ok = true
			break
		}
	}
	if !ok {
		return false, 0
	}
	for _, form := range i.Forms {
		var formType, size string
		for _, f := range form.Fields {
			if len(f.Values) == 0 {
				continue
			}
			switch f.Var {
			case "FORM_TYPE":
				formType = strings.TrimSpace(f.Values[0])
			case "max-file-size":
				size = strings.TrimSpace(f.Values[0])
			}
		}
		if formType != NS || size == "" {
			continue
		}
		// A limit that is no positive number is as good as none.
		if n, err := strconv.ParseInt(size, 10, 64); err == nil && n > 0 {
			return true, n
		}
	}
	return true, 0
}

type discoItems struct {
	Items []struct {
		JID  string `xml:"jid,attr"`
		Node string `xml:"node,attr"`
	} `xml:"http://jabber.org/protocol/disco#items item"`
}

func getInfo(ctx context.Context, s *xmpp.Session, from, to jid.JID) (*discoInfo, error) {
	var info discoInfo
	err := s.UnmarshalIQElement(ctx, disco.InfoQuery{}.TokenReader(), stanza.IQ{From: from, To: to, Type: stanza.GetIQ}, &info)
	if err != nil {
		return nil, err
	}
	return &info, nil
}

// Discover finds the XEP-0363 upload service of the server of domain (only
// the domainpart of the JID is used): the domain itself if it is one, else
// one of the domain's disco#items that is (the first to answer: the items are
// asked concurrently). ctx bounds the whole search. It fails with an error
// wrapping ErrNoUploadService when there is none.
func Discover(ctx context.Context, s *xmpp.Session, domain jid.JID) (Service, error) {
	return DiscoverAs(ctx, s, jid.JID{}, domain)
}

// DiscoverAs is Discover for a session that must name the sender of every
// stanza, such as an XEP-0114 component's: the queries, and the returned
// Service's slot requests, come from from. Entities that are from itself are
// skipped.
func DiscoverAs(ctx context.Context, s *xmpp.Session, from, domain jid.JID) (Service, error) {
	domain = domain.Domain()
	info, err := getInfo(ctx, s, from, domain)
	if err != nil {
		if ctx.Err() != nil {
			return Service{}, fmt.Errorf("httpfile: disco#info %s: %w", domain, err)
		}
		// The items may still be there.
	} else if ok, size := info.upload(); ok {
		return Service{JID: domain, MaxSize: size, From: from}, nil
	}

	var items discoItems
	err = s.UnmarshalIQElement(ctx, disco.ItemsQuery{}.TokenReader(), stanza.IQ{From: from, To: domain, Type: stanza.GetIQ}, &items)
	if err != nil {
		return Service{}, fmt.Errorf("httpfile: disco#items %s: %w", domain, err)
	}
	var candidates []jid.JID
	seen := map[string]bool{domain.String(): true}
	if from.String() != "" {
		seen[from.Domain().String()] = true
	}
	for _, item := range items.Items {
		if item.Node != "" || seen[item.JID] {
			continue // a node is no service of its own
		}
		seen[item.JID] = true
		j, err := jid.Parse(item.JID)
		if err != nil {
			continue
		}
		candidates = append(candidates, j)
		if len(candidates) == maxItems {
			break
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		svc Service
		ok  bool
		err error
	}
	results := make(chan result, len(candidates))
	for _, j := range candidates {
		go func() {
			info, err := getInfo(ctx, s, from, j)
			if err != nil {
				results <- result{err: fmt.Errorf("disco#info %s: %w", j, err)}
				return
			}
			ok, size := info.upload()
			if !ok {
				results <- result{}
				return
			}
			results <- result{svc: Service{JID: j, MaxSize: size, From: from}, ok: true}
		}()
	}
	var errs []error
	for range candidates {
		r := <-results
		if r.ok {
			return r.svc, nil
		}
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	if err := ctx.Err(); err != nil {
		return Service{}, fmt.Errorf("httpfile: discover the upload service of %s: %w", domain, err)
	}
	err = fmt.Errorf("%w: not %s nor any of its %d disco#items", ErrNoUploadService, domain, len(candidates))
	if len(errs) > 0 {
		// Say why some items could not be asked, in case one was it.
		err = fmt.Errorf("%w (%d did not answer; the first: %w)", err, len(errs), errs[0])
	}
	return Service{}, err
}

// probeName and probeSize describe the file Addrs asks a slot for.
const (
	probeName = "address-probe.txt"
	probeSize = 1
)

// Addrs returns the "host:port" addresses the service takes and serves its
// files at: those of the PUT and GET URLs of a slot it grants, for a
// one-byte file that is never uploaded. XEP-0363 names no HTTP address in
// disco, only in slots, and a Fetcher's AllowedAddrs should hold these and
// nothing else of the XMPP server's. The unused slot costs the service a
// record until it expires (Prosody's mod_http_file_share counts one byte
// against the daily quota).
func (svc Service) Addrs(ctx context.Context, s *xmpp.Session) ([]string, error) {
	if svc.JID.Equal(jid.JID{}) {
		return nil, fmt.Errorf("httpfile: %w: the Service is the zero value", ErrNoUploadService)
	}
	slot, err := requestSlot(ctx, s, svc.From, svc.JID, upload.File{Name: probeName, Size: probeSize, Type: "text/plain"})
	if err != nil {
		return nil, fmt.Errorf("httpfile: request a slot of %s to learn its address: %w", svc.JID, err)
	}
	addrs := []string{URLAddr(slot.PutURL)}
	if get := URLAddr(slot.GetURL); get != addrs[0] {
		addrs = append(addrs, get)
	}
	return addrs, nil
}
