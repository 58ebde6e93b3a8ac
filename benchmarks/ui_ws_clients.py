"""Lightweight editor clients for `ui_bench.py` part 5: many people saving through a real `turnscribe ui`
without a browser each.

Twenty chromium instances do not fit on a two-core machine, so each client here speaks Streamlit's own
websocket protocol (the `BackMsg`/`ForwardMsg` protobufs of the installed streamlit, at `/_stcore/stream`)
as the browser does: it GETs the health check and the page, connects with its session cookie
(`turnscribe_session`, minted through `store.web_sessions` as the sign-in form does), opens
`/editor?task=N`, waits for the editor component's first render (its element id, fragment id and JSON
args: `doc`, `ack`), then sends the message the component sends on a save (`op: save`, mount, seq,
base_version, turns, turn_ids, have, doc_version, ...) as that widget's value in a fragment rerun, and
times until the component's args carry `ack.seq == seq`. A client raises (no figures) when an
acknowledgement does not come or refuses the save.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import aiohttp
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

COMPONENT = "turn_editor"
COOKIE = "turnscribe_session"  # review_ui.session_auth.COOKIE (benchmarks import no Streamlit page code)
ACK_TIMEOUT_S = 60.0


class ClientFailure(RuntimeError):
    """A client saw something a browser would not accept: no render, no acknowledgement, a refused save."""


def _js_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


@dataclass
class EditorClient:
    """One person's tab: a websocket session with the editor of one task open."""

    base_url: str
    username: str
    token: str
    task_pk: int
    trips: list[dict[str, float]] = field(default_factory=list)  # {"rt": ms, "server": server_ms}
    last_text: str | None = None  # the turn-1 text of the newest acknowledged save
    _ws: Any = None
    _http: aiohttp.ClientSession | None = None
    _widget_id: str = ""
    _fragment_id: str = ""
    _page_hash: str = ""
    _args: dict[str, Any] = field(default_factory=dict)
    _mount: str = field(default_factory=lambda: secrets.token_hex(5))
    _seq: int = 0
    _version: int = 0
    _turns: list[dict[str, Any]] = field(default_factory=list)
    _turn_ids: list[str] | None = None
    _have: str = ""
    _window: dict[str, float] | None = None
    _finished_seen: bool = False  # a script_finished came (the first whole run is over)

    @property
    def _query(self) -> str:
        return f"task={self.task_pk}&turn=1"

    async def open(self) -> None:
        """GET the health check and the page, connect with the cookie, and run the editor page to its first render."""
        self._http = aiohttp.ClientSession(cookies={COOKIE: self.token})
        for path in ("/_stcore/health", f"/editor?{self._query}"):
            async with self._http.get(self.base_url + path) as response:
                if response.status != 200:
                    raise ClientFailure(f"{self.username}: GET {path} answered {response.status}")
                await response.read()
        ws_url = self.base_url.replace("http", "ws", 1) + "/_stcore/stream"
        self._ws = await self._http.ws_connect(ws_url, protocols=("streamlit",), max_msg_size=0,
                                               headers={"Origin": self.base_url})
        rerun = BackMsg()
        rerun.rerun_script.query_string = self._query
        rerun.rerun_script.page_name = "editor"
        await self._ws.send_bytes(rerun.SerializeToString())
        deadline = time.monotonic() + ACK_TIMEOUT_S * 3  # a whole first run, 20 at once on one core
        while not (self._widget_id and self._finished_seen):
            await self._next(deadline, "the editor's first render")
        doc = self._args["doc"]
        if doc.get("turns") is None:
            raise ClientFailure(f"{self.username}: the first render carried no turns")
        self._version, self._turns, self._turn_ids = doc["version"], doc["turns"], doc.get("turn_ids")
        window = self._args.get("window")
        if window:
            self._window = {"start": window["start"], "end": window["end"]}
            self._have = f"{_js_number(window['start'])}-{_js_number(window['end'])}"
        self.last_text = self._turns[0]["text"]

    async def _next(self, deadline: float, waiting_for: str) -> ForwardMsg:
        """The next ForwardMsg; the editor component's element (id, fragment, args) is remembered when one comes."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise ClientFailure(f"{self.username}: no {waiting_for} within the timeout")
        try:
            frame = await self._ws.receive(timeout=left)
        except asyncio.TimeoutError as timeout:
            raise ClientFailure(f"{self.username}: no {waiting_for} within the timeout") from timeout
        if frame.type != aiohttp.WSMsgType.BINARY:
            raise ClientFailure(f"{self.username}: the websocket closed or sent {frame.type} waiting for {waiting_for}")
        msg = ForwardMsg()
        msg.ParseFromString(frame.data)
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":
            raise ClientFailure(f"{self.username}: the server referred to a cached message this client never held")
        if kind == "new_session":
            self._page_hash = msg.new_session.page_script_hash
        elif kind == "navigation":
            self._page_hash = msg.navigation.page_script_hash or self._page_hash
        elif kind == "script_finished":
            self._finished_seen = True
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            element = msg.delta.new_element
            if element.WhichOneof("type") == "component_instance" and COMPONENT in element.component_instance.component_name:
                self._widget_id = element.component_instance.id
                self._fragment_id = msg.delta.fragment_id or self._fragment_id
                self._args = json.loads(element.component_instance.json_args)
        elif kind == "session_event" and msg.session_event.WhichOneof("type") == "script_compilation_exception":
            raise ClientFailure(f"{self.username}: the page failed: {msg.session_event}")
        return msg

    async def save(self) -> dict[str, float]:
        """Type a character into turn 1 and save it as the component does; the round trip and the server's share."""
        if not self._fragment_id:
            raise ClientFailure(f"{self.username}: the editor component came without a fragment id")
        text = self._turns[0]["text"].rstrip() + "x"
        turns = [{**self._turns[0], "text": text}, *self._turns[1:]]
        self._seq += 1
        seq = self._seq
        message = {"mount": self._mount, "seq": seq, "attempt": 0, "op": "save", "base_version": self._version,
                   "turns": turns, "turn_ids": self._turn_ids, "pii": None,
                   "pending": [{"start": turns[0]["start"], "end": turns[0]["end"], "text": text}],
                   "window": self._window, "turn": 1, "have": self._have, "doc_version": self._version}
        rerun = BackMsg()
        state = rerun.rerun_script
        state.query_string = self._query
        state.page_name = "editor"
        state.page_script_hash = self._page_hash
        state.fragment_id = self._fragment_id
        widget = state.widget_states.widgets.add()
        widget.id = self._widget_id
        widget.json_value = json.dumps(message)
        began = time.perf_counter()
        await self._ws.send_bytes(rerun.SerializeToString())
        deadline = time.monotonic() + ACK_TIMEOUT_S
        while True:
            await self._next(deadline, f"acknowledgement of save {seq}")
            ack = self._args.get("ack") or {}
            if ack.get("mount") == self._mount and ack.get("seq") == seq:
                break
        trip = {"rt": (time.perf_counter() - began) * 1000, "server": ack.get("server_ms")}
        if not ack.get("ok"):
            raise ClientFailure(f"{self.username}: save {seq} refused: {json.dumps(ack)[:300]}")
        self._version, self._turns, self.last_text = ack["version"], turns, text
        self.trips.append(trip)
        return trip

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()


async def _burst(clients: list[EditorClient], rounds: int, gap_s: float) -> None:
    """Every client saves at the same moment, `rounds` times, `gap_s` apart (after the slowest answer)."""
    for _ in range(rounds):
        await asyncio.gather(*(c.save() for c in clients))
        await asyncio.sleep(gap_s)


async def _paced(clients: list[EditorClient], seconds: float, seed: int) -> None:
    """Each client saves, then pauses 0.7-6 s (reading, listening), until `seconds` have passed."""
    stop = time.monotonic() + seconds

    async def person(client: EditorClient, rng: random.Random) -> None:
        await asyncio.sleep(rng.uniform(0, 3))
        while time.monotonic() < stop:
            await client.save()
            await asyncio.sleep(rng.uniform(0.7, 6.0))

    await asyncio.gather(*(person(c, random.Random(seed + i)) for i, c in enumerate(clients)))


async def run_clients(base_url: str, people: list[tuple[str, str, int]], rounds: int, paced_s: float,
                      seed: int = 11, after_open: Callable[[], object] = lambda: None,
                      server_cpu: Callable[[], float] = lambda: 0.0,
                      background_cpu: Callable[[], float] = lambda: 0.0) -> tuple[dict[str, list[dict[str, float]]], dict[int, str], dict[str, float]]:
    """Open `people` (username, token, task) editors, then a burst and a paced phase.

    Returns the trips of each mode, each task's last acknowledged turn-1 text, and the wall time of each phase
    (`walls[mode]`) with the server's CPU seconds in it (`walls[mode + "_cpu"]`, from `server_cpu`; its background
    work's in `walls[mode + "_background_cpu"]`, from `background_cpu`)."""
    clients = [EditorClient(base_url, user, token, task) for user, token, task in people]
    walls: dict[str, float] = {}
    try:
        began = time.monotonic()
        await asyncio.gather(*(c.open() for c in clients))
        walls["open"] = time.monotonic() - began
        after_open()
        trips: dict[str, list[dict[str, float]]] = {}
        for mode, drive in (("burst", lambda: _burst(clients, rounds, 1.0)), ("paced", lambda: _paced(clients, paced_s, seed))):
            marks = [len(c.trips) for c in clients]
            began, cpu, background = time.monotonic(), server_cpu(), background_cpu()
            await drive()
            walls[mode], walls[f"{mode}_cpu"] = time.monotonic() - began, server_cpu() - cpu
            walls[f"{mode}_background_cpu"] = background_cpu() - background
            trips[mode] = [t for c, m in zip(clients, marks) for t in c.trips[m:]]
        return trips, {c.task_pk: c.last_text or "" for c in clients}, walls
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
