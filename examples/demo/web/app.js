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

/// Keeps a socket open: reconnects after a close with a growing pause (0.5 s … 8 s).
function keepOpen(path, badge, handlers) {
  let socket = null;
  let pause = 500;
  let stopped = false;
  const open = () => {
    setBadge(badge, "connecting");
    socket = counted(new WebSocket(base + path));
    socket.onopen = () => { pause = 500; setBadge(badge, "open", "connected"); handlers.open?.(socket); };
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

function addLine(log, kind, text, who) {
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
}

function showServiceLine(line) {
  const chat = /^<([^>]+)> (.*)$/.exec(line);
  if (chat) return addLine(consoleLog, "chat", chat[2], chat[1]);
  if (line.startsWith("* ")) {
    const greeting = /^\* connected to (\S+) as (\S+)\./.exec(line);
    if (greeting) {
      $("console-instance").textContent = greeting[1];
      myName = greeting[2];
    }
    const renamed = /^\* (\S+) is now (\S+)$/.exec(line);
    if (renamed && renamed[1] === myName) myName = renamed[2];
    return addLine(consoleLog, "sys", line.slice(2));
  }
  if (line.startsWith("! ")) return addLine(consoleLog, "err", line.slice(2));
  addLine(consoleLog, "reply", line);
}

// The route has `framing: lines`: each message is one line from the service, without its "\n",
// and each message sent is one line for it (wsgate adds the "\n").
const consoleSocket = keepOpen("/console", "console-state", {
  message: (data) => showServiceLine(typeof data === "string" ? data : new TextDecoder().decode(data)),
  close: (event) => addLine(consoleLog, "sys", `disconnected (close code ${event.code}${event.reason ? `: ${event.reason}` : ""}); reconnecting…`),
});

function sendLine(line) {
  if (!line) return;
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
$("console-reconnect").addEventListener("click", () => consoleSocket.restart());

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
