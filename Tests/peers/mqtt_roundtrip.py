#!/usr/bin/env python3
"""paho-mqtt (PyPI) over WebSocket through wsgate to an MQTT broker: publish and receive back.

    mqtt_roundtrip.py PORT PATH

Connects to ws://127.0.0.1:PORT/PATH (paho offers the subprotocol "mqtt"), subscribes to a topic
with QoS 2, publishes messages of 1 B to 256 KiB at QoS 0, 1 and 2, and checks that every one
comes back intact and in order per QoS. Prints "N received, M lost, K corrupted" and exits 0 only
when all arrived intact.
"""
import hashlib
import sys
import threading

import paho.mqtt.client as mqtt

SIZES = [1, 100, 4096, 65536, 262144]
QOS = [0, 1, 2]


def payload(index: int, size: int) -> bytes:
    seed = hashlib.sha256(str(index).encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def main(port: int, path: str) -> int:
    expected = {}
    received = {}
    lock = threading.Condition()
    subscribed = threading.Event()
    connected = threading.Event()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="wsgate-test", transport="websockets", protocol=mqtt.MQTTv311)
    client.ws_set_options(path=path)

    def on_connect(client, userdata, flags, reason_code, properties):
        if not reason_code.is_failure:
            connected.set()
            client.subscribe("wsgate/test/#", qos=2)

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        subscribed.set()

    def on_message(client, userdata, message):
        with lock:
            received[message.topic] = message.payload
            lock.notify_all()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    try:
        if not connected.wait(10) or not subscribed.wait(10):
            print("0 received, 0 lost, 0 corrupted: no CONNACK/SUBACK within 10 s")
            return 1
        index = 0
        for qos in QOS:
            for size in SIZES:
                topic = f"wsgate/test/{qos}/{size}"
                expected[topic] = payload(index, size)
                client.publish(topic, expected[topic], qos=qos).wait_for_publish(10)
                index += 1
        with lock:
            lock.wait_for(lambda: len(received) >= len(expected), timeout=20)
        client.disconnect()
    finally:
        client.loop_stop()
    lost = [t for t in expected if t not in received]
    corrupted = [t for t in expected if t in received and received[t] != expected[t]]
    print(f"{len(received)} received, {len(lost)} lost, {len(corrupted)} corrupted")
    return 0 if not lost and not corrupted else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), sys.argv[2]))
