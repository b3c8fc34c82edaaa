// wsgate demo client: a chat console over /console (a TCP line service behind wsgate) and an
// echo latency meter over /echo (a WebSocket backend). Same origin as the page, so the sockets
// need no configuration: ws:// on http, wss:// on https (and HTTP/2 when the page came over it).
"use strict";

const base = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;
const $ = (id) => document.getElementById(id);
const encoder = new TextEncoder();

const traffic = { out: 0, in: 0, bytesOut: 0, bytesIn: 0, since: null };

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

function renderTraffic() {
  $("stat-out").textContent = traffic.out;
  $("stat-in").textContent = traffic.in;
  $("stat-bytes-out").textContent = formatBytes(traffic.bytesOut);
  $("stat-bytes-in").textContent = formatBytes(traffic.bytesIn);
  $("stat-time").textContent = traffic.since ? `${Math.round((Date.now() - traffic.since) / 1000)} s` : "—";
}
setInterval(renderTraffic, 1000);

function counted(socket) {
  const send = socket.send.bind(socket);
  socket.send = (data) => {
    traffic.out += 1;
    traffic.bytesOut += typeof data === "string" ? encoder.encode(data).length : data.byteLength;
    send(data);
    renderTraffic();
  };
  socket.addEventListener("message", (event) => {
    traffic.in += 1;
    traffic.bytesIn += typeof event.data === "string" ? encoder.encode(event.data).length : event.data.byteLength;
    renderTraffic();
  });
  socket.addEventListener("open", () => {
    traffic.since = traffic.since || Date.now();
    $("stat-ext").textContent = socket.extensions ? "permessage-deflate" : "off";
  });
  return socket;
}

function setBadge(id, state, text) {
  const badge = $(id);
  badge.dataset.state = state;
  badge.textContent = text || state;
}

/// Keeps a socket open: reconnects after a close with a growing pause (0.5 s … 8 s). `path` is
/// asked again for every connection (a resume names what it last received).
function keepOpen(path, badge, handlers) {
  let socket = null;
  let pause = 500;
  let stopped = false;
  const open = () => {
    setBadge(badge, "connecting");
    socket = counted(new WebSocket(base + (typeof path === "function" ? path() : path)));
    socket.onopen = () => { pause = 500; setBadge(badge, "open", handlers.openText || "connected"); handlers.open?.(socket); };
    socket.onmessage = (event) => handlers.message(event.data);
    socket.onclose = (event) => {
      setBadge(badge, "closed", `closed ${event.code}`);
      handlers.close?.(event);
      if (!stopped) setTimeout(open, pause);
      pause = Math.min(pause * 2, 8000);
    };
  };
  open();
  return {
    send: (data) => socket && socket.readyState === WebSocket.OPEN && (socket.send(data), true),
    restart: () => { pause = 500; socket?.close(1000, "reconnect"); },
  };
}

// MARK: Console

const consoleLog = $("console-log");
let myName = null;

// The console session outlives the page: the route has `resume` and `share`. This tab keeps its
// resume id, its share key, the number of the last line it got and the lines shown in
// sessionStorage, so a reload (or a dropped network) picks the session up where it was, nothing
// lost. `#watch=KEY` opens a read-only viewer of another tab's console.
const watching = /^#watch=([A-Za-z0-9_-]{22,128})$/.exec(location.hash)?.[1] ?? null;
const stored = watching ? null : JSON.parse(sessionStorage.getItem("wsgate-demo-console") || "null");

function randomID() {
  const bytes = crypto.getRandomValues(new Uint8Array(18));  // 144 bits
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_");
}

const consoleState = stored || { id: randomID(), key: randomID(), last: 0, lines: [] };
let resumed = Boolean(stored);

function saveConsole() {
  if (!watching) sessionStorage.setItem("wsgate-demo-console", JSON.stringify(consoleState));
}

function addLine(log, kind, text, who, restoring) {
  const line = document.createElement("div");
  line.className = `line ${kind}`;
  const time = document.createElement("time");
  time.textContent = new Date().toLocaleTimeString([], { hour12: false });
  const dir = document.createElement("span");
  dir.className = "dir";
  dir.textContent = kind === "out" ? "↑" : kind === "sys" ? "•" : "↓";
  const body = document.createElement("span");
  body.className = "text";
  if (who) {
    const name = document.createElement("span");
    name.className = "who";
    name.textContent = `<${who}> `;
    body.append(name);
  }
  body.append(text);
  line.append(time, dir, body);
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(line);
  while (log.childElementCount > 500) log.firstElementChild.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
  if (log === consoleLog && !restoring && !watching) {
    consoleState.lines.push([kind, text, who ?? null]);
    if (consoleState.lines.length > 200) consoleState.lines.shift();
    saveConsole();
  }
}

function showServiceLine(line) {
  const chat = /^<([^>]+)> (.*)$/.exec(line);
  if (chat) return addLine(consoleLog, "chat", chat[2], chat[1]);
  if (line.startsWith("* ")) {
    const greeting = /^\* connected to (\S+) as (\S+)\./.exec(line);
    if (greeting) {
      $("console-instance").textContent = greeting[1];
      myName = greeting[2];
      consoleState.instance = greeting[1];
    }
    const renamed = /^\* (\S+) is now (\S+)$/.exec(line);
    if (renamed && renamed[1] === myName) myName = renamed[2];
    return addLine(consoleLog, "sys", line.slice(2));
  }
  if (line.startsWith("! ")) return addLine(consoleLog, "err", line.slice(2));
  addLine(consoleLog, "reply", line);
}

for (const [kind, text, who] of consoleState.lines) addLine(consoleLog, kind, text, who ?? undefined, true);
if (consoleState.instance) $("console-instance").textContent = consoleState.instance;

// The route has `framing: lines`: each message is one line from the service, without its "\n",
// and each message sent is one line for it (wsgate adds the "\n").
const consoleSocket = keepOpen(
  () => watching ? `/console?share=${watching}` : `/console?share=${consoleState.key}&resume=${consoleState.id}&last=${consoleState.last}`,
  "console-state", {
    openText: watching ? "watching" : "connected",
    open: () => {
      if (watching) return addLine(consoleLog, "sys", "watching another tab's console (read-only)");
      if (resumed) addLine(consoleLog, "sys", `resumed the session after line ${consoleState.last}: what it said meanwhile follows`);
      resumed = true;
    },
    message: (data) => {
      consoleState.last += 1;
      showServiceLine(typeof data === "string" ? data : new TextDecoder().decode(data));
    },
    close: (event) => {
      addLine(consoleLog, "sys", `disconnected (close code ${event.code}${event.reason ? `: ${event.reason}` : ""}); reconnecting…`);
      if (event.code === 1011 && !watching) {
        // Nothing to resume (the window passed, or the gateway restarted): a new session.
        Object.assign(consoleState, { id: randomID(), key: randomID(), last: 0 });
        resumed = false;
        saveConsole();
        showWatchLink();
      }
    },
  });

function sendLine(line) {
  if (!line) return;
  if (watching) return addLine(consoleLog, "err", "a viewer's lines do not reach the console");
  if (consoleSocket.send(line)) addLine(consoleLog, "out", line);
  else addLine(consoleLog, "err", "not connected yet");
}

$("console-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("console-input");
  sendLine(input.value.trim());
  input.value = "";
});
for (const chip of document.querySelectorAll(".chips [data-line]")) {
  chip.addEventListener("click", () => sendLine(chip.dataset.line));
}
const watchLink = $("console-watch");
const showWatchLink = () => { watchLink.href = `${location.pathname}#watch=${consoleState.key}`; };
$("console-reconnect").addEventListener("click", () => {
  // A close frame ends the session (the service's connection closes); the next one is new.
  Object.assign(consoleState, { id: randomID(), key: randomID(), last: 0 });
  resumed = false;
  saveConsole();
  showWatchLink();
  consoleSocket.restart();
});
$("console-reload").addEventListener("click", () => location.reload());
if (watching) {
  watchLink.hidden = true;
  $("console-reload").hidden = true;
  $("console-reconnect").hidden = true;
  $("console-input").disabled = true;
  $("console-input").placeholder = "Watching: read-only";
} else {
  showWatchLink();
}

// MARK: Echo

const echoLog = $("echo-log");
const rtts = [];
const inFlight = new Map();
let sequence = 0;

function drawChart() {
  const recent = rtts.slice(-40);
  const max = Math.max(1, ...recent);
  const points = recent.map((value, i) => `${(i / Math.max(1, recent.length - 1)) * 200},${40 - (value / max) * 36 - 2}`);
  $("rtt-chart").innerHTML = recent.length > 1
    ? `<polyline fill="none" stroke="#4cc2ff" stroke-width="1.5" vector-effect="non-scaling-stroke" points="${points.join(" ")}"/>`
    : "";
}

function recordRTT(ms) {
  rtts.push(ms);
  if (rtts.length > 1000) rtts.shift();
  $("rtt-avg").textContent = (rtts.reduce((a, b) => a + b, 0) / rtts.length).toFixed(2);
  $("rtt-min").textContent = Math.min(...rtts).toFixed(2);
  $("rtt-max").textContent = Math.max(...rtts).toFixed(2);
  $("rtt-count").textContent = rtts.length;
  drawChart();
}

const echoSocket = keepOpen("/echo", "echo-state", {
  open: () => ping(3),
  message: (data) => {
    const text = typeof data === "string" ? data : new TextDecoder().decode(data);
    const probe = /^ping (\d+)$/.exec(text);
    if (probe && inFlight.has(Number(probe[1]))) {
      recordRTT(performance.now() - inFlight.get(Number(probe[1])));
      inFlight.delete(Number(probe[1]));
      return;
    }
    addLine(echoLog, "reply", text);
  },
});

function ping(count) {
  for (let i = 0; i < count; i++) {
    setTimeout(() => {
      sequence += 1;
      inFlight.set(sequence, performance.now());
      echoSocket.send(`ping ${sequence}`);
    }, i * 50);
  }
}

$("echo-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("echo-input");
  if (input.value && echoSocket.send(input.value)) addLine(echoLog, "out", input.value);
  input.value = "";
});
$("echo-burst").addEventListener("click", () => ping(20));
