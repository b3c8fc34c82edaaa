// Node's `ws` (Debian's node-ws) as an MQTT-over-WebSocket client: it offers the subprotocol
// "mqtt" and, like browsers, fails a handshake answered without one.
//
//   NODE_PATH=/usr/share/nodejs node ws_mqtt_connect.js URL
//
// Sends an MQTT 3.1.1 CONNECT and prints "PROTOCOL: <answered> CONNACK: <hex>" or "ERROR: <why>".
const WebSocket = require("ws");

const connect = Buffer.from([0x10, 0x12, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c,
    0x00, 0x06, 0x6e, 0x6f, 0x64, 0x65, 0x77, 0x73]);
const ws = new WebSocket(process.argv[2], ["mqtt"]);
const timer = setTimeout(() => { console.log("ERROR: timeout"); process.exit(1); }, 10000);
ws.on("open", () => ws.send(connect));
ws.on("message", (data) => {
    clearTimeout(timer);
    console.log(`PROTOCOL: ${ws.protocol} CONNACK: ${Buffer.from(data).toString("hex")}`);
    ws.close(1000);
});
ws.on("error", (error) => { clearTimeout(timer); console.log(`ERROR: ${error.message}`); process.exit(1); });
ws.on("close", () => process.exit(0));
