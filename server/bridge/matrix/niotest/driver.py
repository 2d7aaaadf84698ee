"""Drives a matrix-nio AsyncClient for the Go tests (see niotest.go).

Commands arrive on stdin, one JSON object a line: {"id": n, "op": ..., ...}.
Each gets one answer on stdout: {"id": n, "result": {...}} or
{"id": n, "error": "..."}. Once logged in, every timeline event a sync
brings is written as {"event": <the event as the homeserver sent it>,
"room_id": ...}.

Event content is written here as people's clients write it (Element, nio
bots), following the client-server spec's module definitions, and not
through the Go side's Matrix library: the point is a second, independent
idea of what a Matrix message looks like.
"""

import asyncio
import base64
import html
import io
import json
import sys
import traceback
from importlib import metadata
from urllib.parse import quote, urlparse

import nio

# Big enough that a sync never leaves out what the tests wait for.
SYNC_FILTER = {"room": {"timeline": {"limit": 1000}}}


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def matrix_to(*ids):
    return "https://matrix.to/#/" + "/".join(ids)


def strip_reply_fallback(content):
    """What a reply quotes of the message it answers: that message without
    its own reply fallback, as the spec says (no nested quotes)."""
    body = content.get("body", "")
    if (content.get("m.relates_to") or {}).get("m.in_reply_to"):
        lines = body.split("\n")
        while lines and lines[0].startswith(">"):
            lines.pop(0)
        body = "\n".join(lines).lstrip("\n")
    formatted = None
    if content.get("format") == "org.matrix.custom.html" and content.get("formatted_body"):
        formatted = content["formatted_body"]
        end = formatted.find("</mx-reply>")
        if end >= 0:
            formatted = formatted[end + len("</mx-reply>"):]
    return body, formatted


class Driver:
    def __init__(self):
        self.client = None
        self.sync_task = None
        # Events seen, by ID: a reply quotes what it answers from here.
        self.known = {}

    async def op_login(self, cmd):
        config = nio.AsyncClientConfig(store_sync_tokens=False, encryption_enabled=False)
        self.client = nio.AsyncClient(cmd["homeserver"], cmd["user"], config=config)
        resp = await self.client.login(cmd["password"], device_name="niotest")
        if not isinstance(resp, nio.LoginResponse):
            raise RuntimeError(f"login: {resp}")
        # The first sync runs before the answer, so the events of rooms
        # joined from now on are all seen.
        await self.sync_once()
        self.sync_task = asyncio.ensure_future(self.sync_loop())
        return {"user_id": resp.user_id, "device_id": resp.device_id}

    async def sync_once(self, timeout=0):
        resp = await self.client.sync(timeout=timeout, sync_filter=SYNC_FILTER)
        if not isinstance(resp, nio.SyncResponse):
            raise RuntimeError(f"sync: {resp}")
        for room_id, room in resp.rooms.join.items():
            for ev in room.timeline.events:
                src = dict(ev.source)
                if "event_id" in src:
                    self.known[src["event_id"]] = src
                # The class nio parsed the event into says whether nio
                # understood it (RoomMessageText, RoomMessageFile,
                # RedactionEvent...; BadEvent when the content is wrong).
                emit({"event": src, "room_id": room_id, "nio_class": type(ev).__name__})

    async def sync_loop(self):
        while True:
            try:
                await self.sync_once(timeout=1000)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a slow homeserver: try again
                emit({"log": f"sync failed: {e}"})
                await asyncio.sleep(0.5)

    async def original(self, room_id, event_id):
        if event_id in self.known:
            return self.known[event_id]
        resp = await self.client.room_get_event(room_id, event_id)
        if not isinstance(resp, nio.RoomGetEventResponse):
            raise RuntimeError(f"fetch {event_id}: {resp}")
        return resp.event.source

    async def send(self, room_id, event_type, content):
        resp = await self.client.room_send(room_id, event_type, content)
        if not isinstance(resp, nio.RoomSendResponse):
            raise RuntimeError(f"send {event_type}: {resp}")
        return {"event_id": resp.event_id}

    async def op_join(self, cmd):
        resp = await self.client.join(cmd["room"])
        if not isinstance(resp, nio.JoinResponse):
            raise RuntimeError(f"join: {resp}")
        return {"room_id": resp.room_id}

    async def op_send(self, cmd):
        return await self.send(cmd["room"], cmd.get("type", "m.room.message"), cmd["content"])

    async def op_text(self, cmd):
        content = {"msgtype": cmd.get("msgtype", "m.text"), "body": cmd["body"]}
        if cmd.get("html"):
            content["format"] = "org.matrix.custom.html"
            content["formatted_body"] = cmd["html"]
        return await self.send(cmd["room"], "m.room.message", content)

    async def op_edit(self, cmd):
        # As Element sends an edit: the new text in m.new_content, and a
        # fallback "* text" for clients that do not know edits.
        msgtype = cmd.get("msgtype") or "m.text"
        new = {"msgtype": msgtype, "body": cmd["body"]}
        content = {"msgtype": msgtype, "body": " * " + cmd["body"]}
        if cmd.get("html"):
            new["format"] = content["format"] = "org.matrix.custom.html"
            new["formatted_body"] = cmd["html"]
            content["formatted_body"] = " * " + cmd["html"]
        content["m.new_content"] = new
        content["m.relates_to"] = {"rel_type": "m.replace", "event_id": cmd["target"]}
        return await self.send(cmd["room"], "m.room.message", content)

    async def op_react(self, cmd):
        content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": cmd["target"], "key": cmd["key"]}}
        return await self.send(cmd["room"], "m.reaction", content)

    async def op_reply(self, cmd):
        # A rich reply with its fallback, as clients sent them until
        # Matrix 1.13 dropped it: the quote leads the body ("> <@sender>
        # line" per line, "> * <@sender>" for an emote) and, in the HTML
        # form, the formatted_body inside <mx-reply>. The plain form is what
        # text-only clients and bots send: the quote in the body only.
        room, target = cmd["room"], cmd["target"]
        orig = await self.original(room, target)
        sender = orig["sender"]
        oc = orig.get("content", {})
        obody, ohtml = strip_reply_fallback(oc)
        emote = oc.get("msgtype") == "m.emote"
        lines = obody.split("\n")
        first = "> " + ("* " if emote else "") + f"<{sender}> " + lines[0]
        quoted = "\n".join([first] + ["> " + l if l else ">" for l in lines[1:]])
        content = {"msgtype": "m.text", "body": quoted + "\n\n" + cmd["body"]}
        if cmd.get("html_fallback"):
            inner = ohtml if ohtml is not None else html.escape(obody).replace("\n", "<br/>")
            fallback = (
                "<mx-reply><blockquote>"
                f'<a href="{matrix_to(room, target)}">In reply to</a> '
                + ("* " if emote else "")
                + f'<a href="{matrix_to(sender)}">{html.escape(sender)}</a><br/>'
                + inner
                + "</blockquote></mx-reply>"
            )
            mine = cmd.get("html") or html.escape(cmd["body"]).replace("\n", "<br/>")
            content["format"] = "org.matrix.custom.html"
            content["formatted_body"] = fallback + mine
        rel = {"m.in_reply_to": {"event_id": target}}
        if cmd.get("thread_root"):
            # A quoted reply inside a thread (Element): the thread relation
            # and a real reply, not a fallback.
            rel.update({"rel_type": "m.thread", "event_id": cmd["thread_root"], "is_falling_back": False})
        content["m.relates_to"] = rel
        return await self.send(room, "m.room.message", content)

    async def op_thread(self, cmd):
        # As Element sends a message in a thread: the thread relation, and
        # for clients without threads a reply to the thread's latest event,
        # marked as only a fallback (no quote in the body).
        content = {"msgtype": "m.text", "body": cmd["body"]}
        content["m.relates_to"] = {
            "rel_type": "m.thread",
            "event_id": cmd["root"],
            "is_falling_back": True,
            "m.in_reply_to": {"event_id": cmd.get("latest") or cmd["root"]},
        }
        return await self.send(cmd["room"], "m.room.message", content)

    async def op_redact(self, cmd):
        resp = await self.client.room_redact(cmd["room"], cmd["target"], reason=cmd.get("reason"))
        if not isinstance(resp, nio.RoomRedactResponse):
            raise RuntimeError(f"redact: {resp}")
        return {"event_id": resp.event_id}

    async def op_file(self, cmd):
        data = base64.b64decode(cmd["data"])
        mime, name = cmd["mimetype"], cmd["name"]
        resp, _ = await self.client.upload(io.BytesIO(data), content_type=mime, filename=name, filesize=len(data))
        if not isinstance(resp, nio.UploadResponse):
            raise RuntimeError(f"upload: {resp}")
        info = {"mimetype": mime, "size": len(data)}
        info.update(cmd.get("info") or {})
        msgtype = "m.image" if mime.startswith("image/") else "m.file"
        # A caption is the body, with the name in filename (Matrix 1.10);
        # without one the body is the name, as clients always sent it.
        body = cmd.get("caption") or name
        content = {"msgtype": msgtype, "body": body, "filename": name, "url": resp.content_uri, "info": info}
        sent = await self.send(cmd["room"], "m.room.message", content)
        sent["url"] = resp.content_uri
        return sent

    async def op_download(self, cmd):
        # nio's download (the unauthenticated /_matrix/media/r0 of nio
        # 0.20) first. Homeservers with authenticated media (Matrix 1.11;
        # Synapse's default since 1.120) refuse it for new media, and
        # nio 0.20 knows no other endpoint: then the authenticated one, sent
        # through nio's own HTTP session with the access token.
        resp = await self.client.download(mxc=cmd["mxc"])
        if isinstance(resp, nio.DownloadResponse):
            return {
                "data": base64.b64encode(resp.body).decode(),
                "content_type": resp.content_type,
                "via": "nio download",
            }
        url = urlparse(cmd["mxc"])
        path = "/_matrix/client/v1/media/download/" + quote(url.netloc) + "/" + quote(url.path.lstrip("/"))
        headers = {"Authorization": "Bearer " + self.client.access_token}
        async with await self.client.send("GET", path, headers=headers) as r:
            body = await r.read()
            if r.status != 200:
                raise RuntimeError(f"download {cmd['mxc']}: nio download: {resp}; authenticated media: {r.status} {body[:200]!r}")
            return {
                "data": base64.b64encode(body).decode(),
                "content_type": r.headers.get("Content-Type", ""),
                "via": f"authenticated media (nio download: {resp})",
            }

    async def op_close(self, cmd):
        if self.sync_task:
            self.sync_task.cancel()
        if self.client:
            await self.client.close()
        return {}


async def main():
    emit({"ready": {"nio": metadata.version("matrix-nio"), "python": sys.version.split()[0]}})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    driver = Driver()
    while True:
        line = await reader.readline()
        if not line:
            break
        cmd = json.loads(line)
        try:
            handler = getattr(driver, "op_" + cmd["op"])
            emit({"id": cmd["id"], "result": await handler(cmd)})
        except Exception as e:
            emit({"id": cmd["id"], "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()})
        if cmd["op"] == "close":
            break


if __name__ == "__main__":
    asyncio.run(main())
