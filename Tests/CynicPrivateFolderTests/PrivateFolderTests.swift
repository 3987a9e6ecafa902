import CynicPrivateFolder
import CynicTestSupport
import Foundation
import Testing

private func mode(_ path: String) -> mode_t? {
    var status = stat()
    return lstat(path, &status) == 0 ? status.st_mode & 0o7777 : nil
}

@Suite("The folder private to the current user")
struct PrivateFolderTests {
    @Test("made 0700 in XDG_RUNTIME_DIR whatever the umask; made again, it is accepted as is")
    func createsInTheRuntimeDirectory() throws {
        let runtime = TemporaryFolder()
        let previous = umask(0o077)
        defer { umask(previous) }
        let folder = try PrivateFolder.forCurrentUser(runtimeDirectory: runtime.path)
        #expect(folder == runtime.file("cynic"))
        #expect(mode(folder) == 0o700)
        #expect(try PrivateFolder.forCurrentUser(runtimeDirectory: runtime.path + "/") == folder)
    }

    @Test("without a usable XDG_RUNTIME_DIR (unset, relative, missing): /tmp/cynic-<uid>")
    func fallsBackToTmp() throws {
        let expected = "/tmp/cynic-\(geteuid())"
        for runtime in [nil, "relative/run", "/nonexistent/runtime"] {
            #expect(try PrivateFolder.forCurrentUser(runtimeDirectory: runtime) == expected)
        }
        #expect(mode(expected) == 0o700)
    }

    @Test("a folder open to group or others is refused with the fix, and left unchanged")
    func refusesAnOpenFolder() throws {
        let base = TemporaryFolder()
        for loose: mode_t in [0o777, 0o750, 0o701] {
            let folder = base.file("open-\(String(loose, radix: 8))")
            try #require(mkdir(folder, 0o700) == 0 && chmod(folder, loose) == 0)
            #expect { try PrivateFolder.prepare(folder) } throws: { error in
                "\(error)" == "\(folder): its mode 0\(String(loose, radix: 8)) lets group or others in; "
                    + "it must be 0700 (chmod 700 \(folder))"
            }
            #expect(mode(folder) == loose)
        }
    }

    @Test("a symbolic link (even to a private folder), a file, or a folder not ours is refused")
    func refusesWhatIsNotOurFolder() throws {
        let base = TemporaryFolder()
        try #require(mkdir(base.file("real"), 0o700) == 0)
        try #require(symlink(base.file("real"), base.file("link")) == 0)
        #expect { try PrivateFolder.prepare(base.file("link")) } throws: { "\($0)" == "\(base.file("link")): it is a symbolic link" }
        try base.write("file", "x")
        #expect { try PrivateFolder.prepare(base.file("file")) } throws: { "\($0)" == "\(base.file("file")): it is not a directory" }
        #expect { try PrivateFolder.prepare(base.file("missing/parent")) } throws: {
            "\($0)".hasPrefix("\(base.file("missing/parent")): cannot create it: No such file or directory")
        }
        // Only root can give a folder away.
        if geteuid() == 0 {
            try #require(mkdir(base.file("theirs"), 0o700) == 0 && chown(base.file("theirs"), 65534, 65534) == 0)
            #expect { try PrivateFolder.prepare(base.file("theirs")) } throws: {
                "\($0)".contains("it is owned by uid 65534, not by the current user (uid 0)")
            }
        }
    }

    @Test("makeParents makes what is missing above a folder, and leaves the folder itself")
    func makesParents() throws {
        let base = TemporaryFolder()
        try PrivateFolder.makeParents(of: base.file("a/b/c"))
        #expect(mode(base.file("a/b")) != nil)
        #expect(mode(base.file("a/b/c")) == nil)
        try base.write("a/file", "x")
        #expect { try PrivateFolder.makeParents(of: base.file("a/file/d/e")) } throws: {
            "\($0)".hasPrefix("\(base.file("a/file/d")): cannot create it")
        }
    }
}
