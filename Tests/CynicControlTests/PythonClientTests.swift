import CynicTestSupport
import Foundation
import Testing

// The Python client and its pytest plugin (clients/python) are tested by their own pytest suite,
// against the cynic built with these tests; run here so that `swift test` is the whole suite.
// The package is taken from the source tree (PYTHONPATH), not from an installed copy that may be
// older: `-p no:cynic` blocks an installed plugin's entry point, `-p cynic_client.pytest_plugin`
// loads the tree's.

@Suite("The Python client and its pytest plugin")
struct PythonClientTests {
    @Test("clients/python's own tests pass against this cynic",
          .enabled(if: pytestIsInstalled || ProcessInfo.processInfo.environment["CI"] == "true"))
    func pytestSuite() throws {
        let client = Paths.repository + "/clients/python"
        // Its TLS services mint from a CA of the run's own, not the user's.
        let ca = TemporaryFolder("cynic-python-ca")
        let result = try runProgram("/usr/bin/env", [
            "python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:cynic", "-p", "cynic_client.pytest_plugin",
            client + "/tests",
        ], environment: ["CYNIC": Paths.cynic, "PYTHONPATH": client + "/src", "PYTHONDONTWRITEBYTECODE": "1",
                       "CYNIC_CA_DIR": ca.path + "/ca"], timeout: 600)
        #expect(result.status == 0, "\(result.output)")
    }
}
