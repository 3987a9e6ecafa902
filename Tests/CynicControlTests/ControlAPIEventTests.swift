import CynicTestSupport
import Foundation
import Testing

// The event log and the metrics as a test reads them over the control API: Python clients, as
// the tests that use cynic are written.

@Suite("The control API: events and metrics")
struct ControlAPIEventTests {
    @Test("'the client retried 3 times', from GET /events alone; a long poll that waits for the next one; the NDJSON stream")
    func retriesFromEvents() throws {
        let api = try CynicWithAPI()
        let created = try api.call("POST", "/services", #"{"name": "flaky", "behaviour": "reset"}"#)
        let port = CynicWithAPI.port(of: created.object)
        let result = try runPython("""
            import json, sys, threading, time, urllib.request
            import requests
            from requests.adapters import HTTPAdapter
            from urllib3.util.retry import Retry
            api, port = sys.argv[1], int(sys.argv[2])

            # Someone waiting on the stream before the client starts.
            streamed = []
            def follow():
                with urllib.request.urlopen(api + "/events/stream?service=flaky", timeout=30) as stream:
                    for line in stream:
                        streamed.append(json.loads(line))
                        if len(streamed) == 3: return
            follower = threading.Thread(target=follow, daemon=True)
            follower.start()
            time.sleep(0.5)

            session = requests.Session()
            session.mount("http://", HTTPAdapter(max_retries=Retry(total=2, backoff_factor=0, allowed_methods=None, raise_on_status=False)))
            try:
                session.get(f"http://127.0.0.1:{port}/", timeout=10)
                raise AssertionError("the reset service answered")
            except requests.exceptions.ConnectionError:
                pass

            events = json.load(urllib.request.urlopen(api + "/events?service=flaky&wait=10"))
            ends = [event["end"] for event in events["events"]]
            deadline = time.monotonic() + 10
            while len(ends) < 3 and time.monotonic() < deadline:
                more = json.load(urllib.request.urlopen(api + f"/events?service=flaky&wait=5"))
                ends = [event["end"] for event in more["events"]]
            assert ends == ["reset", "reset", "reset"], ends
            follower.join(10)
            assert [event["end"] for event in streamed] == ["reset"] * 3, streamed
            assert all(event["client"]["bytes_in"] > 0 and event["ended_by"] == "behaviour" for event in streamed), streamed

            # A long poll after the last id returns when the next connection ends, not before.
            last = events["last_id"] if len(events["events"]) == 3 else more["last_id"]
            started = time.monotonic()
            def later():
                time.sleep(1)
                try:
                    requests.get(f"http://127.0.0.1:{port}/", timeout=5)
                except requests.exceptions.ConnectionError:
                    pass
            threading.Thread(target=later).start()
            waited = json.load(urllib.request.urlopen(api + f"/events?service=flaky&after={last}&wait=30"))
            took = time.monotonic() - started
            assert [event["id"] for event in waited["events"]] == [last + 1], waited
            assert 0.9 <= took < 20, took
            print("ok")
            """, [api.url, String(port)], timeout: 120)
        #expect(result.status == 0 && result.standardOutput.contains("ok"), "\(result.output)\n\(api.cynic.standardError)")
    }

    @Test("GET /metrics parses as Prometheus text and counts what the test did")
    func metrics() throws {
        let api = try CynicWithAPI()
        let created = try api.call("POST", "/services", #"{"name": "counted", "behaviour": "http-json"}"#)
        let port = CynicWithAPI.port(of: created.object)
        for _ in 0..<3 {
            _ = try runProgram("/usr/bin/env", ["curl", "-sS", "--max-time", "10", "http://127.0.0.1:\(port)/"])
        }
        _ = try api.call("GET", "/events?service=counted&wait=10")
        let result = try runPython("""
            import sys, time, urllib.request
            from prometheus_client.parser import text_string_to_metric_families
            deadline = time.monotonic() + 10
            while True:
                text = urllib.request.urlopen(sys.argv[1] + "/metrics").read().decode()
                samples = {}
                for family in text_string_to_metric_families(text):
                    for sample in family.samples:
                        samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
                connections = sum(value for (name, labels), value in samples.items()
                                  if name == "cynic_connections_total" and ("service", "counted") in labels)
                if connections >= 3 or time.monotonic() > deadline: break
                time.sleep(0.2)
            assert connections == 3, text
            sent = samples[("cynic_bytes_total", (("direction", "out"), ("service", "counted"), ("side", "client")))]
            assert sent > 3 * 20, text
            assert samples[("cynic_connections_open", (("service", "counted"),))] == 0, text
            assert samples[("cynic_plugin_loads_total", (("plugin", "http-json"),))] >= 1, text
            print("ok")
            """, [api.url])
        #expect(result.status == 0 && result.standardOutput.contains("ok"), "\(result.output)")
    }

    @Test("bad event queries name their parameter")
    func badQueries() throws {
        let api = try CynicWithAPI()
        for (query, field) in [("limit=0", "limit"), ("wait=61", "wait"), ("since=yesterday", "since"), ("after=-1", "after"), ("colour=red", "colour")] {
            let answer = try api.call("GET", "/events?\(query)")
            #expect(answer.status == 400 && answer.object["field"] as? String == field, "\(query): \(answer)")
        }
    }
}
