# A slixmpp client driven over stdin/stdout by slixmpptest (Go).
#
# Each line on stdin is a JSON command {"seq": n, "op": "...", ...}; each line
# on stdout is a JSON object: {"reply": n, ...} answers command n (with
# "error" when it failed), {"event": "..."} reports something that happened
# (every message stanza received, the session starting or failing).
#
# The stanzas are built with slixmpp's own plugins and stanza interfaces so
# that what the bridge receives is what slixmpp-based clients really send;
# received stanzas are read the same way, so a test sees what slixmpp
# understood. Nothing here writes stanza XML by hand.

import asyncio
import io
import json
import logging
import os
import sys
from pathlib import Path

try:
    import aiohttp  # noqa: F401 (xep_0363 uploads with it)
    import slixmpp
    from slixmpp import JID, ClientXMPP
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import StanzaPath
except ImportError as e:  # the Go side turns this into a test failure
    print(json.dumps({"event": "fatal", "error": "cannot import slixmpp or aiohttp: %s" % e}), flush=True)
    sys.exit(3)


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def plugin(stanza, name):
    """The stanza's plugin called name, or None if the stanza has none."""
    return stanza.get_plugin(name, check=True)


class Driver(ClientXMPP):
    def __init__(self, jid, password, host, port, ca_file):
        super().__init__(jid, password)
        # Trust only the test server's authority: verification stays on.
        self.ca_certs = ca_file
        # connect(address) still resolves the JID's domain, with the default
        # port; the test server listens on loopback IPv4 only.
        self.default_port = port
        self.use_ipv6 = False
        self.address_to_use = (host, port)
        for name in ("xep_0030", "xep_0045", "xep_0066", "xep_0071", "xep_0199",
                     "xep_0308", "xep_0334", "xep_0359", "xep_0363", "xep_0422",
                     "xep_0424", "xep_0428", "xep_0444", "xep_0461"):
            self.register_plugin(name)
        self.register_handler(Callback("every message", StanzaPath("message"), self.on_message))
        self.add_event_handler("session_start", self.on_start)
        # failed_auth is one mechanism refused (slixmpp then tries the next:
        # ejabberd refuses its SCRAM-*-PLUS channel binding on TLS 1.3);
        # failed_all_auth is the end.
        self.add_event_handler("failed_auth", lambda *_: logging.warning("a SASL mechanism was refused; trying the next"))
        self.add_event_handler("failed_all_auth", lambda *_: emit({"event": "fatal", "error": "authentication failed"}))
        self.add_event_handler("connection_failed", lambda e: emit({"event": "fatal", "error": "connection failed: %s" % e}))
        self.add_event_handler("disconnected", lambda reason: emit({"event": "disconnected", "reason": str(reason)}))

    async def on_start(self, _):
        self.send_presence()
        emit({"event": "started", "jid": str(self.boundjid), "version": slixmpp.__version__})

    def on_message(self, msg):
        ev = {
            "event": "message",
            "raw": str(msg),
            "type": msg["type"],
            "from": str(msg["from"]),
            "id": msg["id"],
            "body": msg["body"],
            "thread": msg["thread"],
        }
        if (p := plugin(msg, "origin_id")) is not None:
            ev["origin_id"] = p["id"]
        # Only the room's stanza-id names a groupchat message for others.
        for sid in msg.xml.findall("{urn:xmpp:sid:0}stanza-id"):
            if sid.get("by") == msg["from"].bare:
                ev["stanza_id"] = sid.get("id")
        if (p := plugin(msg, "replace")) is not None:
            ev["replace_id"] = p["id"]
        if (p := plugin(msg, "reactions")) is not None:
            ev["reactions_to"] = p["id"]
            ev["reactions"] = sorted(p.get_values(all_chars=True))
        if (p := plugin(msg, "apply_to")) is not None and plugin(p, "retract") is not None:
            ev["retract_id"] = p["id"]
        if (p := plugin(msg, "reply")) is not None:
            ev["reply_to"] = p["id"]
            if (fb := plugin(msg, "feature_fallback")) is not None:
                ev["reply_body"] = fb.get_stripped_body()
        if (p := plugin(msg, "oob")) is not None:
            ev["oob_url"] = p["url"]
        if (p := plugin(msg, "html")) is not None:
            ev["html"] = p["body"]
        emit(ev)

    def groupchat(self, room, body, html=None):
        msg = self.make_message(mto=JID(room), mbody=body, mtype="groupchat", mhtml=html)
        # As poezio and other slixmpp clients do: the stanza id doubles as
        # the XEP-0359 origin-id, which corrections refer to.
        msg["origin_id"]["id"] = msg["id"]
        return msg

    async def run_command(self, cmd):
        op = cmd["op"]
        room = cmd.get("room")
        if op == "join":
            await self.plugin["xep_0045"].join_muc_wait(JID(room), cmd["nick"], maxstanzas=0, timeout=60)
            return {}
        if op == "say":
            msg = self.groupchat(room, cmd["body"], cmd.get("html"))
            if cmd.get("thread"):
                msg["thread"] = cmd["thread"]
            msg.send()
            return {"id": msg["id"]}
        if op == "correct":
            msg = self.groupchat(room, cmd["body"])
            msg["replace"]["id"] = cmd["id"]
            msg.send()
            return {"id": msg["id"]}
        if op == "react":
            # send_reactions would send a chat message; rooms need groupchat.
            msg = self.make_message(mto=JID(room), mtype="groupchat")
            self.plugin["xep_0444"].set_reactions(msg, cmd["id"], cmd["reactions"])
            msg.enable("store")
            msg.send()
            return {"id": msg["id"]}
        if op == "reply":
            # slixmpp 1.8's send_reply adds no quote; its clients put one in
            # front and mark it with the feature-fallback element the
            # xep_0461 plugin defines.
            quote = "".join("> " + line + "\n" for line in cmd["quote"].splitlines())
            html = None
            if cmd.get("html"):
                html = "<blockquote>%s</blockquote><p>%s</p>" % (cmd["quote_html"], cmd["html"])
            msg = self.groupchat(room, quote + cmd["body"], html)
            msg["reply"]["id"] = cmd["id"]
            msg["reply"]["to"] = cmd["to"]
            fb = msg["feature_fallback"]
            fb["for"] = self.plugin["xep_0461"].namespace
            fb["fallback_body"]["start"] = "0"
            fb["fallback_body"]["end"] = str(len(quote))
            msg.send()
            return {"id": msg["id"]}
        if op == "retract":
            self.plugin["xep_0424"].send_retraction(JID(room), cmd["id"], mtype="groupchat")
            return {}
        if op == "upload":
            data = bytes.fromhex(cmd["data_hex"])
            # slixmpp 1.8.3's service discovery for uploads
            # (get_info_from_domain) hands coroutines to asyncio.wait, which
            # Python 3.11 (bookworm's) refuses; a client that names its
            # upload service skips it, and the upload itself is slixmpp's.
            self.plugin["xep_0363"].upload_service = JID(cmd["domain"])
            url = await self.plugin["xep_0363"].upload_file(
                Path(cmd["name"]), size=len(data), content_type=cmd["content_type"],
                input_file=io.BytesIO(data), domain=JID(cmd["domain"]), timeout=60)
            # As slixmpp's clients share a file: the URL as the body and as
            # out-of-band data.
            msg = self.groupchat(room, url)
            msg["oob"]["url"] = url
            msg.send()
            return {"id": msg["id"], "url": url}
        if op == "close":
            self.disconnect()
            return {}
        raise ValueError("unknown op %r" % op)


async def read_commands(driver):
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            # The test ended: stdin closed.
            driver.disconnect()
            await asyncio.sleep(0.5)
            return
        cmd = json.loads(line)
        asyncio.ensure_future(answer(driver, cmd))


async def answer(driver, cmd):
    try:
        result = await driver.run_command(cmd)
        result["reply"] = cmd["seq"]
    except Exception as e:  # reported to the test, which fails with it
        result = {"reply": cmd["seq"], "error": "%s: %s" % (type(e).__name__, e)}
    emit(result)


def main():
    logging.basicConfig(level=os.environ.get("SLIXMPP_LOG", "WARNING"), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # From the environment, not the command line, where others could read
    # the password.
    conf = json.loads(os.environ["SLIXMPPTEST_CONFIG"])
    driver = Driver(conf["jid"], conf["password"], conf["host"], conf["port"], conf["ca_file"])
    driver.connect(driver.address_to_use)
    driver.loop.run_until_complete(read_commands(driver))


if __name__ == "__main__":
    main()
