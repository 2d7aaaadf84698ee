package xmpp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/connector"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/doctor"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/xmppext/httpfile"
)

// nsOccupantID is XEP-0421's feature, which the doctor looks for in a
// room's disco#info (beside nsMAM).
const nsOccupantID = "urn:xmpp:occupant-id:0"

// doctorNickSuffix marks the doctor's own short visit in a room, beside
// the bridge's nick, so occupants (and the running bridge) see who it is.
const doctorNickSuffix = " (doctor)"

// Doctor checks the XMPP settings for an admin (connector.Descriptor's
// Doctor).
func Doctor(ctx context.Context, c connector.Config, env connector.DoctorEnv) doctor.Report {
	cc, ok := c.(configured)
	if !ok {
		return doctor.Run(ctx, "xmpp", env.Limits, []doctor.Step{{Name: "Settings", Run: func(context.Context) doctor.Result {
			return doctor.Fail("The XMPP settings could not be read.", "Save the XMPP settings in the System Console again.")
		}}})
	}
	return runDoctor(ctx, cc.cfg, env)
}

// runDoctor checks the server from cfg alone, on connections of its own
// (a resource of its own in client mode), so a running bridge is not
// disturbed: DNS, TCP, TLS, the login, the server's upload and
// registration services, and each linked room.
func runDoctor(ctx context.Context, cfg Config, env connector.DoctorEnv) doctor.Report {
	d := &xmppDoctor{cfg: cfg, env: env, presences: map[string]chan mucPresence{}, features: map[string][]string{}}
	d.cfg.observeTLS = d.sawTLS
	d.cfg.logins = nil // the doctor's logins teach the bridge nothing
	if d.cfg.Nick == "" {
		d.cfg.Nick = "Mattermost"
	}
	defer d.close()
	return doctor.Run(ctx, "xmpp", env.Limits, d.steps())
}

type xmppDoctor struct {
	cfg Config
	env connector.DoctorEnv

	mu       sync.Mutex
	targets  []string // host:port to connect to, from DNS
	tlsState *tls.ConnectionState
	// session is the doctor's own stream, once logged in (or handshaken);
	// self is who it is in rooms and IQs.
	session *xmpp.Session
	self    jid.JID
	// login is the outcome of the one login the TLS and Authentication
	// checks share.
	loginOnce sync.Once
	login     doctorLogin
	// presences wait for a room's answer to the doctor's join, by full
	// occupant JID.
	presences map[string]chan mucPresence
	// features are each room's disco#info features, by room.
	features map[string][]string
}

type doctorLogin struct {
	session *xmpp.Session
	used    *saslLogin
	err     error
	// refusedPlus says why channel binding is not used, when the server
	// refused it (whether or not the login without it worked).
	refusedPlus string
}

func (d *xmppDoctor) component() bool { return d.cfg.Mode == ModeComponent }

// serverName is the name the server's certificate must carry and the
// domain looked up in DNS.
func (d *xmppDoctor) serverName() jid.JID {
	if d.component() {
		return d.cfg.ComponentDomain.Domain()
	}
	return d.cfg.JID.Domain()
}

func (d *xmppDoctor) steps() []doctor.Step {
	connect := "Authentication"
	if d.component() {
		connect = "Component handshake"
	}
	steps := []doctor.Step{
		{Name: "Settings", Run: d.checkSettings},
		{Name: "DNS", Needs: []string{"Settings"}, Run: d.checkDNS},
		{Name: "TCP", Needs: []string{"DNS"}, Run: d.checkTCP},
		{Name: "TLS", Needs: []string{"TCP"}, Run: d.checkTLS},
	}
	if d.component() {
		steps = append(steps, doctor.Step{Name: connect, Needs: []string{"TLS"}, Run: d.checkHandshake})
		if d.env.Connected {
			// The server allows one connection per component: the
			// handshake check says why the rest is not checked here.
			return steps
		}
	} else {
		steps = append(steps, doctor.Step{Name: connect, Needs: []string{"TLS"}, Run: d.checkLogin})
	}
	steps = append(steps, doctor.Step{Name: "HTTP upload", Needs: []string{connect}, Run: d.checkUpload})
	if !d.component() {
		// The plugin gives every Mattermost user an account of their own in
		// client mode (see build).
		steps = append(steps, doctor.Step{Name: "In-band registration", Needs: []string{"TLS"}, Run: d.checkRegistration})
	}
	for _, raw := range d.env.Rooms {
		room := raw
		exists := "Room " + room
		steps = append(steps,
			doctor.Step{Name: exists, Needs: []string{connect}, Run: func(ctx context.Context) doctor.Result { return d.checkRoom(ctx, room) }},
			doctor.Step{Name: "Join " + room, Needs: []string{exists}, Run: func(ctx context.Context) doctor.Result { return d.checkJoin(ctx, room) }},
			doctor.Step{Name: "Archive (MAM) of " + room, Needs: []string{exists}, Run: func(context.Context) doctor.Result { return d.checkArchive(room) }},
			doctor.Step{Name: "Occupant IDs in " + room, Needs: []string{exists}, Run: func(context.Context) doctor.Result { return d.checkOccupantID(room) }},
		)
	}
	return steps
}

func (d *xmppDoctor) checkSettings(context.Context) doctor.Result {
	if err := d.cfg.Validate(); err != nil {
		// Validate names settings, never their values.
		return doctor.Fail("The XMPP settings are incomplete: "+err.Error()+".", "Complete the XMPP settings in the System Console and save them.")
	}
	via := d.cfg.Address
	if via == "" {
		via = "the domain's DNS records"
	}
	who := "client mode as " + d.cfg.JID.Bare().String()
	if d.component() {
		who = "component mode as " + d.cfg.ComponentDomain.String()
	}
	return doctor.Pass("%s via %s, %s.", who, via, d.cfg.transport())
}

func (d *xmppDoctor) checkDNS(ctx context.Context) doctor.Result {
	if d.cfg.Address != "" {
		host, port, _ := net.SplitHostPort(d.cfg.Address)
		if ip := net.ParseIP(host); ip != nil {
			d.setTargets([]string{d.cfg.Address})
			return doctor.Pass("%s is an address: nothing to look up.", host)
		}
		addrs, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil || len(addrs) == 0 {
			return doctor.Fail(fmt.Sprintf("%s does not resolve: %v.", host, err),
				"Set XMPPServerAddress to a host name that resolves from the Mattermost server, or add its A/AAAA records.")
		}
		var targets []string
		for _, a := range addrs {
			targets = append(targets, net.JoinHostPort(a, port))
		}
		d.setTargets(targets)
		return doctor.Pass("%s resolves to %s.", host, strings.Join(addrs, ", "))
	}
	// No address: the SRV records of the domain, as clients find servers
	// (RFC 6120 3.2), or its own A/AAAA records on the default port.
	domain := d.serverName().Domainpart()
	service, port := "xmpp-client", "5222"
	if d.cfg.TLSMode == TLSDirect {
		service, port = "xmpps-client", "5223"
	}
	var targets, found []string
	if _, srvs, err := net.DefaultResolver.LookupSRV(ctx, service, "tcp", domain); err == nil {
		for _, srv := range srvs {
			target := strings.TrimSuffix(srv.Target, ".")
			addrs, aerr := net.DefaultResolver.LookupHost(ctx, target)
			if aerr != nil {
				continue
			}
			for _, a := range addrs {
				targets = append(targets, net.JoinHostPort(a, strconv.Itoa(int(srv.Port))))
			}
			found = append(found, fmt.Sprintf("%s:%d (%s)", target, srv.Port, strings.Join(addrs, ", ")))
		}
	}
	if len(targets) > 0 {
		d.setTargets(targets)
		return doctor.Pass("_%s._tcp.%s points to %s.", service, domain, strings.Join(found, "; "))
	}
	addrs, err := net.DefaultResolver.LookupHost(ctx, domain)
	if err != nil || len(addrs) == 0 {
		return doctor.Fail(fmt.Sprintf("%s has no _%s._tcp SRV records and does not resolve: %v.", domain, service, err),
			fmt.Sprintf("Add _%s._tcp SRV records (or an A/AAAA record) for %s, or set XMPPServerAddress to the server's host:port.", service, domain))
	}
	for _, a := range addrs {
		targets = append(targets, net.JoinHostPort(a, port))
	}
	d.setTargets(targets)
	return doctor.Pass("%s has no _%s._tcp SRV records; it resolves to %s (port %s).", domain, service, strings.Join(addrs, ", "), port)
}

func (d *xmppDoctor) setTargets(t []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.targets = t
}

func (d *xmppDoctor) checkTCP(ctx context.Context) doctor.Result {
	d.mu.Lock()
	targets := slices.Clone(d.targets)
	d.mu.Unlock()
	var problems []string
	for _, addr := range targets {
		start := time.Now()
		var dialer net.Dialer
		conn, err := dialer.DialContext(ctx, "tcp", addr)
		if err == nil {
			conn.Close()
			return doctor.Pass("Connected to %s in %d ms.", addr, time.Since(start).Milliseconds())
		}
		problems = append(problems, err.Error())
	}
	return doctor.Fail("Could not connect: "+strings.Join(problems, "; ")+".",
		"Check that the XMPP server listens there and that no firewall stands between the Mattermost server and it.")
}

// sawTLS keeps the state of a verified TLS handshake.
func (d *xmppDoctor) sawTLS(cs tls.ConnectionState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tlsState = &cs
}

func (d *xmppDoctor) checkTLS(ctx context.Context) doctor.Result {
	switch d.cfg.TLSMode {
	case TLSPlainLoopback:
		return doctor.Pass("Not used: XMPPTLSMode is plain-loopback-only and %s is a loopback address.", d.cfg.Address)
	case TLSDirect:
		conn, err := d.cfg.dialTCP(ctx, d.serverName())
		if err != nil {
			return tlsFailure(d.serverName().Domainpart(), err)
		}
		conn.Close()
	default:
		// STARTTLS happens inside the stream: the login tells.
		if l := d.logIn(ctx); l.err != nil && d.verifiedTLS() == nil {
			if ctx.Err() == nil && !isTLSError(l.err) {
				return doctor.Fail("The stream did not get to TLS: "+l.err.Error()+".", "Check that XMPPServerAddress is the server's client port (5222 for STARTTLS).")
			}
			return tlsFailure(d.serverName().Domainpart(), l.err)
		}
	}
	cs := d.verifiedTLS()
	if cs == nil {
		return doctor.Fail("The server's TLS handshake was not seen.", "Check XMPPTLSMode against the port in XMPPServerAddress.")
	}
	return doctor.Pass("%s", d.describeTLS(*cs))
}

func (d *xmppDoctor) verifiedTLS() *tls.ConnectionState {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.tlsState
}

// describeTLS names the protocol and the certificate, and, when
// verification is off, whether it would have passed.
func (d *xmppDoctor) describeTLS(cs tls.ConnectionState) string {
	out := tls.VersionName(cs.Version)
	if len(cs.PeerCertificates) == 0 {
		return out
	}
	leaf := cs.PeerCertificates[0]
	names := leaf.DNSNames
	if len(names) == 0 {
		names = []string{leaf.Subject.CommonName}
	}
	if len(names) > 3 {
		names = append(names[:3:3], "…")
	}
	out += fmt.Sprintf("; certificate for %s issued by %s, valid until %s", strings.Join(names, ", "), leaf.Issuer.CommonName, leaf.NotAfter.UTC().Format(time.DateOnly))
	if d.cfg.InsecureSkipVerify {
		tc, err := d.cfg.tlsConfig(d.serverName().Domainpart())
		if err == nil {
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, verr := leaf.Verify(x509.VerifyOptions{DNSName: d.serverName().Domainpart(), Roots: tc.RootCAs, Intermediates: inter})
			if verr != nil {
				out += fmt.Sprintf("; NOT verified (XMPPInsecureSkipVerify is on), and it would fail: %v", verr)
			} else {
				out += "; XMPPInsecureSkipVerify is on, though the certificate verifies: turn it off"
			}
		}
	}
	return out + "."
}

func isTLSError(err error) bool {
	msg := err.Error()
	return errors.Is(err, ErrUntrustedCert) || strings.Contains(msg, "x509:") || strings.Contains(msg, "tls:") || strings.Contains(msg, "TLS")
}

// tlsFailure names the certificate's problem (untrusted, expired, wrong
// name) and its fix.
func tlsFailure(server string, err error) doctor.Result {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "unknown authority"):
		return doctor.Fail(msg+".", "Put the certificate of the authority that signed the XMPP server's certificate in XMPPCACertificate, or give the server a certificate from a public authority.")
	case strings.Contains(msg, "expired") || strings.Contains(msg, "not valid yet"):
		return doctor.Fail(msg+".", "Renew the XMPP server's certificate.")
	case strings.Contains(msg, "not valid for"):
		return doctor.Fail(msg+".", "Give the XMPP server a certificate that names "+server+".")
	}
	return doctor.Fail("TLS with "+server+" failed: "+msg+".", "Check XMPPTLSMode: \"tls\" needs the server's direct TLS port, \"starttls\" its client port.")
}

// logIn logs in once, as the bridge's account on a resource of its own,
// the way the bridge does (dialClientOnce): channel binding first, and
// once more without it when the server refused it.
func (d *xmppDoctor) logIn(ctx context.Context) doctorLogin {
	d.loginOnce.Do(func() {
		account, err := d.cfg.JID.WithResource("mattermost-doctor-" + randomID()[:8])
		if err != nil {
			d.login.err = err
			return
		}
		s, used, err := d.cfg.dialClientOnce(ctx, account, d.cfg.Password, false)
		if err != nil && used.plus() && ctx.Err() == nil && !lostConnection(err) {
			d.login.refusedPlus = fmt.Sprintf("the server refused %s (%v)", used.describe(), err)
			s, used, err = d.cfg.dialClientOnce(ctx, account, d.cfg.Password, true)
		}
		d.login.session, d.login.used, d.login.err = s, used, err
		if err == nil {
			d.serve(s, s.LocalAddr())
		}
	})
	return d.login
}

func (d *xmppDoctor) checkLogin(ctx context.Context) doctor.Result {
	l := d.logIn(ctx)
	account := d.cfg.JID.Bare().String()
	if l.err != nil {
		detail := l.err.Error()
		if l.used != nil && l.used.mechanism != "" {
			detail = fmt.Sprintf("SASL %s was refused: %v", l.used.describe(), l.err)
		}
		if l.refusedPlus != "" {
			detail += "; before that, " + l.refusedPlus
		}
		switch {
		case errors.Is(l.err, ErrAuth):
			return doctor.Fail(detail+".", "Set XMPPPassword to the password of "+account+", and check that the account exists and is not disabled.")
		case errors.Is(l.err, ErrChannelBinding):
			return doctor.Fail(detail+".", "Let the server see the TLS connection itself (no TLS-terminating proxy in front of it) or turn channel binding off on the server.")
		}
		return doctor.Fail(detail+".", "Check XMPPJID and the server's log for why it refused the login.")
	}
	detail := fmt.Sprintf("Logged in as %s with %s", account, l.used.describe())
	if l.refusedPlus != "" {
		detail += "; channel binding is not used because " + l.refusedPlus
	}
	return doctor.Pass("%s.", detail)
}

func (d *xmppDoctor) checkHandshake(ctx context.Context) doctor.Result {
	domain := d.cfg.ComponentDomain.String()
	if d.env.Connected {
		return doctor.Pass("The running bridge is connected as %s, so the server accepted the secret. The server allows one connection per component, so the doctor opens none and does not check rooms or server features here; /xmppbridge status shows them.", domain)
	}
	s, err := d.cfg.dialComponent(ctx)
	if err != nil {
		if strings.Contains(err.Error(), "conflict") {
			return doctor.Fail("The server accepted the secret but another connection already holds "+domain+" (conflict).",
				"Stop whatever else connects as "+domain+" (another Mattermost server or an old bridge), then save the XMPP settings again.")
		}
		return doctor.Fail(err.Error()+".", "Set XMPPComponentSecret to the secret the server's configuration gives "+domain+", and XMPPComponentDomain to the component's name there.")
	}
	self, _ := jid.New("doctor", d.cfg.ComponentDomain.Domainpart(), "mattermost-doctor")
	d.serve(s, self)
	return doctor.Pass("The server accepted %s's handshake.", domain)
}

// serve reads the doctor's stream: IQ answers reach their callers, room
// presences their joins.
func (d *xmppDoctor) serve(s *xmpp.Session, self jid.JID) {
	d.mu.Lock()
	d.session, d.self = s, self
	d.mu.Unlock()
	go func() {
		_ = s.Serve(xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			if start.Name.Local != "presence" {
				return nil
			}
			raw, err := readStanza(t, start)
			if err != nil {
				return nil
			}
			var p mucPresence
			if xml.Unmarshal(raw, &p) != nil {
				return nil
			}
			d.mu.Lock()
			ch := d.presences[p.From]
			d.mu.Unlock()
			if ch != nil {
				select {
				case ch <- p:
				default:
				}
			}
			return nil
		}))
	}()
}

// iq starts an IQ from the doctor: a component names itself (servers close
// a component stream at a stanza without a from).
func (d *xmppDoctor) iq(typ stanza.IQType, to jid.JID) (*xmpp.Session, stanza.IQ) {
	d.mu.Lock()
	defer d.mu.Unlock()
	iq := stanza.IQ{Type: typ, ID: randomID(), To: to}
	if d.component() {
		iq.From = d.self
	}
	return d.session, iq
}

func (d *xmppDoctor) checkUpload(ctx context.Context) doctor.Result {
	s, iq := d.iq(stanza.GetIQ, jid.JID{})
	domain := s.LocalAddr().Domain()
	if d.component() {
		if _, parent, ok := strings.Cut(d.cfg.ComponentDomain.Domainpart(), "."); ok {
			if p, err := jid.New("", parent, ""); err == nil {
				domain = p
			}
		}
	}
	svc, err := httpfile.DiscoverAs(ctx, s, iq.From, domain)
	if err != nil {
		return doctor.Fail(fmt.Sprintf("No HTTP upload service (XEP-0363) found on %s: %v. Files from Mattermost are named in the room instead of sent.", domain, err),
			"Enable HTTP upload on the server (Prosody: the http_file_share module; ejabberd: mod_http_upload), and let the bridge use it.")
	}
	limit := "no size limit announced"
	if svc.MaxSize > 0 {
		limit = fmt.Sprintf("files up to %d MiB", svc.MaxSize>>20)
	}
	return doctor.Pass("%s (%s).", svc.JID, limit)
}

func (d *xmppDoctor) checkRegistration(ctx context.Context) doctor.Result {
	s, err := d.cfg.registrationStream(ctx, d.cfg.JID.Bare())
	if err != nil {
		if errors.Is(err, ErrRegistrationRefused) {
			return doctor.Fail(fmt.Sprintf("%s does not offer in-band registration (XEP-0077): every Mattermost user's messages come from the bridge account instead of an account of their own.", d.serverName()),
				"Allow registration from the Mattermost server (Prosody: allow_registration = true with registration_allowlist; ejabberd: mod_register with an access rule for its address).")
		}
		return doctor.Fail("Could not ask about registration: "+err.Error()+".", "Check the server's log for why it closed the stream.")
	}
	_ = s.Close()
	return doctor.Pass("%s offers in-band registration for the Mattermost users' accounts. Servers do not announce their registration rate limit (ejabberd allows one per address every 10 minutes by default); when refused, the bridge sends from its own account and tries again later.", d.serverName())
}

func (d *xmppDoctor) checkRoom(ctx context.Context, room string) doctor.Result {
	j, err := jid.Parse(room)
	if err != nil || j.Localpart() == "" {
		return doctor.Fail(fmt.Sprintf("%q is not a room JID.", room), "Unlink it with /xmppbridge unmap in its channel and link the room's JID.")
	}
	s, iq := d.iq(stanza.GetIQ, j.Bare())
	info, err := disco.GetInfoIQ(ctx, "", iq, s)
	if err != nil {
		var se stanza.Error
		if errors.As(err, &se) && (se.Condition == stanza.ItemNotFound || se.Condition == stanza.RemoteServerNotFound) {
			return doctor.Fail(fmt.Sprintf("Room %s does not exist (%s).", j.Bare(), se.Condition),
				"Create the room on the XMPP server, or unlink it with /xmppbridge unmap in its channel.")
		}
		return doctor.Fail(fmt.Sprintf("Could not look up room %s: %v.", j.Bare(), err), "Check that the room's service is up and allows the bridge to query it.")
	}
	var feats []string
	for _, f := range info.Features {
		feats = append(feats, f.Var)
	}
	if !slices.Contains(feats, nsMUC) {
		return doctor.Fail(fmt.Sprintf("%s is not a multi-user chat room.", j.Bare()), "Unlink it with /xmppbridge unmap and link a room of the server's MUC service.")
	}
	d.mu.Lock()
	d.features[room] = feats
	d.mu.Unlock()
	name := ""
	for _, id := range info.Identity {
		if id.Name != "" {
			name = " (" + id.Name + ")"
		}
	}
	return doctor.Pass("%s%s exists.", j.Bare(), name)
}

// mucPresence is the part of a room presence the join check reads.
type mucPresence struct {
	From string `xml:"from,attr"`
	Type string `xml:"type,attr"`
	MUC  *struct {
		Item struct {
			Affiliation string `xml:"affiliation,attr"`
			Role        string `xml:"role,attr"`
		} `xml:"item"`
	} `xml:"http://jabber.org/protocol/muc#user x"`
	Error *struct {
		Inner []struct {
			XMLName xml.Name
		} `xml:",any"`
		Text string `xml:"urn:ietf:params:xml:ns:xmpp-stanzas text"`
	} `xml:"error"`
}

// checkJoin enters the room under the bridge's nick marked as the
// doctor's, reads the bot's affiliation and role from the room's answer,
// and leaves at once.
func (d *xmppDoctor) checkJoin(ctx context.Context, room string) doctor.Result {
	j := jid.MustParse(room).Bare()
	occ, err := j.WithResource(d.cfg.Nick + doctorNickSuffix)
	if err != nil {
		return doctor.Fail(fmt.Sprintf("The nick %q is not valid: %v.", d.cfg.Nick, err), "Report this as a bug of the bridge plugin.")
	}
	answer := make(chan mucPresence, 1)
	d.mu.Lock()
	d.presences[occ.String()] = answer
	s, self := d.session, d.self
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.presences, occ.String())
		d.mu.Unlock()
	}()
	from := jid.JID{}
	if d.component() {
		from = self
	}
	if err := s.Send(ctx, joinPresence(occ, from)); err != nil {
		return doctor.Fail("Could not send the join: "+err.Error()+".", "Check the server's log for why it closed the stream.")
	}
	var p mucPresence
	select {
	case p = <-answer:
	case <-ctx.Done():
		return doctor.Fail(fmt.Sprintf("The room did not answer the join: %v", ctx.Err()), "Check that the room's service is up.")
	}
	if p.Type == "error" {
		reason := "refused"
		if p.Error != nil {
			for _, in := range p.Error.Inner {
				if in.XMLName.Local != "text" {
					reason = in.XMLName.Local
					break
				}
			}
			if p.Error.Text != "" {
				reason += ": " + p.Error.Text
			}
		}
		who := d.cfg.JID.Bare().String()
		if d.component() {
			who = "the component " + d.cfg.ComponentDomain.String()
		}
		return doctor.Fail(fmt.Sprintf("The room refused the bot's join: %s.", reason),
			fmt.Sprintf("Make %s a member of %s (or open the room to non-members), and lift any ban on it.", who, j))
	}
	leave := stanza.Presence{To: occ, From: from, Type: stanza.UnavailablePresence}
	_ = s.Send(ctx, leave.Wrap(nil))
	affiliation, role := "none", "none"
	if p.MUC != nil {
		affiliation, role = p.MUC.Item.Affiliation, p.MUC.Item.Role
	}
	if role == "visitor" {
		return doctor.Fail(fmt.Sprintf("The bot joins with affiliation %s but as a visitor: it may not speak in this moderated room.", affiliation),
			"Make the bot a member of the room or give it voice.")
	}
	return doctor.Pass("The bot can join: affiliation %s, role %s.", affiliation, role)
}

func (d *xmppDoctor) roomFeatures(room string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.features[room]
}

func (d *xmppDoctor) checkArchive(room string) doctor.Result {
	if slices.Contains(d.roomFeatures(room), nsMAM) {
		return doctor.Pass("The room keeps a message archive (%s): messages sent while the bridge is away are caught up.", nsMAM)
	}
	return doctor.Fail(fmt.Sprintf("The room keeps no message archive (%s is not in its disco#info): messages sent while the bridge is disconnected are lost.", nsMAM),
		"Turn the room archive on (Prosody: the muc_mam module; ejabberd: mod_mam, with mam on in the room's options).")
}

func (d *xmppDoctor) checkOccupantID(room string) doctor.Result {
	if slices.Contains(d.roomFeatures(room), nsOccupantID) {
		return doctor.Pass("The room gives stable occupant IDs (XEP-0421).")
	}
	return doctor.Fail(fmt.Sprintf("The room gives no occupant IDs (%s, XEP-0421): someone who changes nick looks like a new person in Mattermost.", nsOccupantID),
		"Turn occupant IDs on (Prosody 0.12 and later: muc_occupant_id; ejabberd: mod_muc_occupantid).")
}

func (d *xmppDoctor) close() {
	d.mu.Lock()
	s := d.session
	d.mu.Unlock()
	if s != nil {
		_ = s.Close()
		_ = s.Conn().Close()
	}
}
