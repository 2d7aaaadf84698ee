package main

// Benchmarks of XMPP <-> Matrix through one linked channel, beside
// matterbridge v1.26.0 (bin/matterbridge, make matterbridge) relaying an
// XMPP room of the same Prosody to a Matrix room of the same Dendrite:
//
//	BenchmarkXMPPToMatrix               carol (XMPP) -> Prosody -> bridge -> Dendrite -> dave's /sync
//	BenchmarkMatrixToXMPP               carol (Matrix) -> Dendrite -> bridge -> Prosody -> carol's XMPP client
//	BenchmarkMatterbridgeXMPPToMatrix   the same, relayed by matterbridge
//	BenchmarkMatterbridgeMatrixToXMPP
//
// Their floor is Dendrite's send-to-sync, the slower hop
// (BenchmarkDendriteSendToSync, same load). Loads and metrics are
// bench_test.go's; cpu-ms/msg is the relaying process's (the plugin's, or
// matterbridge's), hs-req/msg its requests to the homeserver. Each run relays between a fresh pair of rooms;
// matterbridge is started for each run with that run's pair.
//
// Run with make bench, or:
//
//	go test -run '^$' -bench 'XMPPToMatrix|MatrixToXMPP' -benchtime 200x ./server/

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/mattermost-community/mattermost-plugin-bridge/server/bridge/xmpp/prosodytest"
	"github.com/mattermost-community/mattermost-plugin-bridge/server/testhost"
)

// peerBench is Prosody and Dendrite, the plugin linked with both, carol on
// each network and dave on Matrix.
type peerBench struct {
	*matrixBench
	prosody *prosodytest.Server
	xcarol  *prosodytest.Client
}

func newPeerBench(b *testing.B) *peerBench {
	b.Helper()
	p := &peerBench{prosody: prosodytest.Start(b, prosodytest.Options{})}
	p.prosody.CreateUser(b, "bridge", bridgePassword)
	p.prosody.CreateUser(b, "carol", "carol-pw")
	p.prosody.CreateUser(b, "mbbot", "mbbot-pw")
	p.matrixBench = newMatrixBenchWith(b, xmppSettings(p.prosody, "client"))
	p.xcarol = p.prosody.Client(b, "carol", "carol-pw")
	p.h.hs.RegisterUser(b, "mbbot", "mbbot-password") // matterbridge's
	waitConnected(b, p.h.n, p.h.admin, p.h.ch, "xmppbridge", "XMPP")
	return p
}

// rooms makes a fresh Matrix room (see matrixBench.room) and a fresh XMPP
// room with carol in it.
func (p *peerBench) rooms(b *testing.B) (mroom id.RoomID, xroom jid.JID, tag string) {
	b.Helper()
	mroom, tag = p.room(b)
	xroom = p.prosody.RoomJID(b, tag)
	ctx, cancel := context.WithTimeout(p.ctx, benchSetupWait)
	defer cancel()
	if err := p.xcarol.JoinRoom(ctx, xroom, "Carol"); err != nil {
		b.Fatal(err)
	}
	return mroom, xroom, tag
}

// relay is what moves messages between a run's two rooms: the plugin, or
// matterbridge.
type relay struct {
	// used is the relaying process's CPU time so far, and for the plugin
	// its API calls (matterbridge makes none).
	used func() pluginUse
	// requests counts its requests to the homeserver.
	requests *requestCounter
}

// linkBridge links a fresh channel with both rooms.
func (p *peerBench) linkBridge(b *testing.B, mroom id.RoomID, xroom jid.JID, tag string) relay {
	b.Helper()
	ch := channelOf(p.h.s, tag, p.h.admin, p.h.alice, p.h.bob)
	runCommand(b, p.h.n, p.h.admin, ch, "/matrixbridge map "+string(mroom), "Linked this channel")
	runCommand(b, p.h.n, p.h.admin, ch, "/xmppbridge map "+xroom.String(), "Linked this channel")
	return relay{used: func() pluginUse { return pluginUsed(b, p.h.n) }, requests: p.requests}
}

// startMatterbridge runs bin/matterbridge with a gateway between the two
// rooms until the run ends.
func (p *peerBench) startMatterbridge(b *testing.B, mroom id.RoomID, xroom jid.JID) relay {
	b.Helper()
	exe := filepath.Join(testhost.RepoRoot(b), "bin", "matterbridge")
	if _, err := os.Stat(exe); err != nil {
		b.Fatalf("matterbridge is not built: run make matterbridge (%v)", err)
	}
	requests := countRequests(b, p.h.hs.BaseURL())
	dir := b.TempDir()
	conf := fmt.Sprintf(`[general]
RemoteNickFormat="[{PROTOCOL}] <{NICK}> "
IgnoreFailureOnStart=false

[xmpp.bench]
Server=%q
Jid="mbbot@%s"
Password="mbbot-pw"
Muc=%q
Nick="matterbridge"
SkipTLSVerify=true

[matrix.bench]
Server=%q
Login="mbbot"
Password="mbbot-password"
NoHomeServerSuffix=true

[[gateway]]
name="bench"
enable=true
    [[gateway.inout]]
    account="xmpp.bench"
    channel=%q
    [[gateway.inout]]
    account="matrix.bench"
    channel=%q
`, p.prosody.C2SAddr(), p.prosody.Domain, p.prosody.MUCDomain, requests.url, xroom.Localpart(), string(mroom))
	file := filepath.Join(dir, "matterbridge.toml")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(p.ctx)
	cmd := exec.CommandContext(ctx, exe, "-conf", file)
	cmd.Dir = dir
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	started := make(chan struct{})
	var log strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		once := false
		for sc.Scan() {
			if !once {
				log.WriteString(sc.Text() + "\n")
			}
			if !once && strings.Contains(sc.Text(), "Now relaying messages") {
				once = true
				close(started)
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(benchSetupWait):
		b.Fatalf("matterbridge did not start relaying:\n%s", log.String())
	}
	pid := cmd.Process.Pid
	return relay{used: func() pluginUse { return pluginUse{cpu: processCPU(b, pid)} }, requests: requests}
}

// warm repeats a message from one side until one reaches the other:
// matterbridge ignores what its first /sync brings, and joins without
// saying when it is in.
func warm(b *testing.B, what string, say func(text string) error, watch func(tag string) <-chan benchArrival) {
	b.Helper()
	arrived := watch(what)
	deadline := time.After(benchSetupWait)
	for i := 0; ; i++ {
		if err := say(what + " " + strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
		select {
		case <-arrived:
			return
		case <-time.After(time.Second):
		case <-deadline:
			b.Fatalf("%s never crossed", what)
		}
	}
}

func (p *peerBench) run(b *testing.B, load benchLoad, toMatrix bool, start func(mroom id.RoomID, xroom jid.JID, tag string) relay) {
	b.Helper()
	mroom, xroom, tag := p.rooms(b)
	r := start(mroom, xroom, tag)
	sayXMPP := func(text string) error { _, err := p.xcarol.Say(p.ctx, xroom, text); return err }
	sayMatrix := func(text string) error { return p.say(p.ctx, mroom, text) }
	wctx, wcancel := context.WithCancel(p.ctx)
	defer wcancel()
	var watches []*roomWatch
	defer func() {
		for _, w := range watches {
			w.close()
		}
	}()
	watchMatrix := func(tag string) <-chan benchArrival {
		w := watchRoom(b, p.dave, mroom, tag, b.N)
		watches = append(watches, w)
		return w.arrived
	}
	watchXMPP := func(tag string) <-chan benchArrival { return watchOccupant(wctx, p.xcarol, xroom, tag, b.N) }
	warm(b, tag+"warmx", sayXMPP, watchMatrix)
	warm(b, tag+"warmm", sayMatrix, watchXMPP)

	say, watch := sayMatrix, watchXMPP
	if toMatrix {
		say, watch = sayXMPP, watchMatrix
	}
	arrived := watch(tag)
	before, requests := r.used(), r.requests.n.Load()
	b.ResetTimer()
	run := benchDrive(b, b.N, load, func(i int) error { return say(tag + " " + strconv.Itoa(i)) }, arrived)
	b.StopTimer()
	extra := before.upTo(b, r.used())
	extra["hs-req/msg"] = r.requests.perMessage(b, requests)
	benchReport(b, run, extra)
}

func BenchmarkXMPPToMatrix(b *testing.B)             { benchPeer(b, true, false) }
func BenchmarkMatrixToXMPP(b *testing.B)             { benchPeer(b, false, false) }
func BenchmarkMatterbridgeXMPPToMatrix(b *testing.B) { benchPeer(b, true, true) }
func BenchmarkMatterbridgeMatrixToXMPP(b *testing.B) { benchPeer(b, false, true) }

func benchPeer(b *testing.B, toMatrix, matterbridge bool) {
	p := newPeerBench(b)
	for _, load := range benchLoads {
		b.Run(load.name, func(b *testing.B) {
			p.run(b, load, toMatrix, func(mroom id.RoomID, xroom jid.JID, tag string) relay {
				if matterbridge {
					return p.startMatterbridge(b, mroom, xroom)
				}
				return p.linkBridge(b, mroom, xroom, tag)
			})
		})
	}
}
