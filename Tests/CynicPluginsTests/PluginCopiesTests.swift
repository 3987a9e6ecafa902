import CynicPlugins
import CynicTestSupport
import Foundation
import Testing

private func contents(_ path: String) -> String? {
    try? String(contentsOfFile: path, encoding: .utf8)
}

private func mode(_ path: String) -> mode_t? {
    var status = stat()
    return lstat(path, &status) == 0 ? status.st_mode & 0o7777 : nil
}

@Suite("Private copies of plugin files")
struct PluginCopiesTests {
    @Test("the same content gets the same version and path; the copy is that content")
    func sameContent() throws {
        let folder = TemporaryFolder()
        let copies = try PluginCopies()
        defer { copies.removeAll() }
        let file = try folder.write("plugin.so", "version one")

        let first = try copies.copy(of: try PluginFile.read(file))
        #expect(first.version.count == 16)
        #expect(first.path == copies.directory + "/\(first.version)-plugin.so")
        #expect(contents(first.path) == "version one")
        #expect(mode(first.path) == 0o500)

        // Rewritten with the same bytes (a new inode): still the same copy.
        #expect(unlink(file) == 0)
        try folder.write("plugin.so", "version one")
        let again = try copies.copy(of: try PluginFile.read(file))
        #expect(again == first)
    }

    @Test("a copy of a C plugin loads")
    func copyLoads() throws {
        let folder = TemporaryFolder()
        let copies = try PluginCopies()
        defer { copies.removeAll() }
        let file = try compileCPlugin(minimalPlugin(name: "copied"), named: "copied", into: folder.path)
        let copy = try copies.copy(of: try PluginFile.read(file))
        let plugin = try Plugin.load(file: copy.path)
        #expect(plugin.name == "copied")
    }

    @Test("changed content gets a new version and a new path; the old copy stays")
    func changedContent() throws {
        let folder = TemporaryFolder()
        let copies = try PluginCopies()
        defer { copies.removeAll() }
        let file = try folder.write("plugin.so", "version one")
        let first = try copies.copy(of: try PluginFile.read(file))
        try folder.write("plugin.so", "version two")
        let second = try copies.copy(of: try PluginFile.read(file))

        #expect(second.version != first.version)
        #expect(second.path != first.path)
        #expect(contents(second.path) == "version two")
        #expect(contents(first.path) == "version one")
    }

    @Test("the version is the 64-bit FNV-1a hash of the bytes, in 16 lowercase hex digits")
    func fnv1aVersion() throws {
        let folder = TemporaryFolder()
        let copies = try PluginCopies()
        defer { copies.removeAll() }
        // The published FNV-1a 64 test vectors.
        for (text, hash) in [("", "cbf29ce484222325"), ("a", "af63dc4c8601ec8c"), ("foobar", "85944171f73967e8")] {
            let file = try folder.write("v.so", text)
            #expect(try copies.copy(of: try PluginFile.read(file)).version == hash)
        }
    }

    @Test("the default folder is a fresh private one per instance, 0700; removeAll deletes it")
    func privateFolder() throws {
        let folder = TemporaryFolder()
        let copies = try PluginCopies()
        let other = try PluginCopies()
        defer { other.removeAll() }

        #expect(copies.directory != other.directory)
        let name = copies.directory.split(separator: "/").last.map(String.init) ?? ""
        #expect(name.hasPrefix("plugins-\(getpid())-"))
        #expect(mode(copies.directory) == 0o700)
        let parent = String(copies.directory[..<copies.directory.lastIndex(of: "/")!])
        #expect(mode(parent) == 0o700)

        let copy = try copies.copy(of: try PluginFile.read(folder.write("plugin.so", "x")))
        copies.removeAll()
        #expect(mode(copy.path) == nil)
        #expect(mode(copies.directory) == nil)
        #expect(mode(other.directory) != nil, "another instance's folder is left alone")
    }

    @Test("a given folder is made with its parents, 0700, even under a loose umask")
    func givenFolder() throws {
        let base = TemporaryFolder()
        let path = base.file("a/b/copies")
        let previous = umask(0o022)
        defer { umask(previous) }
        let copies = try PluginCopies(directory: path)
        #expect(copies.directory == path)
        #expect(mode(path) == 0o700)
        #expect(mode(base.file("a")) == 0o700)
        copies.removeAll()
        #expect(mode(path) == nil)
    }

    @Test("a folder that is a symbolic link, not ours, or open to others is refused")
    func refusesForeignFolder() throws {
        let base = TemporaryFolder()
        #expect(symlink(base.path, base.file("link")) == 0)
        #expect { try PluginCopies(directory: base.file("link")) } throws: { error in
            "\(error)".contains(base.file("link")) && "\(error)".contains("symbolic link")
        }
        // A folder others can write to may already hold their code: refused, not repaired.
        #expect(mkdir(base.file("open"), 0o700) == 0 && chmod(base.file("open"), 0o777) == 0)
        #expect { try PluginCopies(directory: base.file("open")) } throws: { error in
            "\(error)".contains(base.file("open")) && "\(error)".contains("mode 0777")
        }
        #expect(mode(base.file("open")) == 0o777)
        // Only root can give a folder away.
        if geteuid() == 0 {
            #expect(mkdir(base.file("theirs"), 0o700) == 0)
            #expect(chown(base.file("theirs"), 65534, 65534) == 0)
            #expect { try PluginCopies(directory: base.file("theirs")) } throws: { error in
                "\(error)".contains(base.file("theirs")) && "\(error)".contains("owned by uid 65534")
            }
        }
    }

    @Test("a copy changed from outside is not reused")
    func tamperedCopy() throws {
        let folder = TemporaryFolder()
        let copies = try PluginCopies()
        defer { copies.removeAll() }
        let file = try folder.write("plugin.so", "genuine")
        let copy = try copies.copy(of: try PluginFile.read(file))
        #expect(chmod(copy.path, 0o600) == 0)
        try "changed".write(toFile: copy.path, atomically: false, encoding: .utf8)
        #expect { try copies.copy(of: try PluginFile.read(file)) } throws: { error in
            "\(error)".contains("exists with other content")
        }
    }

    @Test("remove(path:) deletes one copy and nothing outside the folder")
    func removesOne() throws {
        let folder = TemporaryFolder()
        let copies = try PluginCopies()
        defer { copies.removeAll() }
        let one = try copies.copy(of: try PluginFile.read(folder.write("one.so", "1")))
        let two = try copies.copy(of: try PluginFile.read(folder.write("two.so", "2")))
        copies.remove(path: one.path)
        #expect(mode(one.path) == nil)
        #expect(contents(two.path) == "2")

        let outside = try folder.write("outside.so", "keep")
        copies.remove(path: outside)
        copies.remove(path: copies.directory + "/../" + (outside.split(separator: "/").last.map(String.init) ?? ""))
        #expect(contents(outside) == "keep")
    }
}
