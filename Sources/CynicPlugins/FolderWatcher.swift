import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Watches plugin folders with inotify and reports the plugin files whose state changed, each
/// once it has been quiet for a while.
///
/// A path is reported when it appeared, was rewritten, was renamed in, was removed or was renamed
/// away; the receiver looks at the file to learn which. Settling matters because one change is
/// several events (`cc -o` into the folder gives delete, create, then close) and a file may be
/// written in several steps: reporting at the first event would load half a file.
///
/// Only what `PluginDirectory.pluginFiles()` would list counts: `*.so` with the folder's prefix,
/// never a dot-file, so `.name.so.tmp` staging files are invisible until renamed in.
///
/// Not followed: a watched folder that is itself removed or renamed (its watch ends), and a change
/// to the target of a symbolic link in the folder (only the link's own creation is seen).
public final class FolderWatcher: Sendable {
    private let core: Core

    /// Starts watching; `onChange` gets batches of full paths (`folder.path + "/" + name`, as
    /// `pluginFiles()` spells them) whose state changed, each reported once it has been quiet for
    /// `settle`. It is called on a private serial queue, never concurrently, and never once
    /// `stop()` has returned.
    public init(directories: [PluginDirectory], settle: Duration = .milliseconds(50),
                onChange: @escaping @Sendable ([String]) -> Void) throws(PluginDirectoryError) {
        let inotify = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard inotify >= 0 else {
            throw PluginDirectoryError(path: directories.first?.path ?? "", reason: "inotify: \(String(cString: strerror(errno)))")
        }
        // inotify cannot be woken by another thread; a socket pair can, and SOCK_CLOEXEC is
        // atomic where pipe2 and eventfd are not imported.
        var wake: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &wake) == 0 else {
            let reason = String(cString: strerror(errno))
            close(inotify)
            throw PluginDirectoryError(path: directories.first?.path ?? "", reason: "socketpair: \(reason)")
        }

        // One folder named twice (or through two spellings) is one watch descriptor: keep every
        // directory of it, each with its own prefix and spelling.
        var watches: [Int32: [PluginDirectory]] = [:]
        var known: Set<String> = []
        do throws(PluginDirectoryError) {
            for directory in directories {
                let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_CREATE | IN_ONLYDIR)
                let descriptor = inotify_add_watch(inotify, directory.path, mask)
                guard descriptor >= 0 else {
                    throw PluginDirectoryError(path: directory.path, reason: String(cString: strerror(errno)))
                }
                watches[descriptor, default: []].append(directory)
                // Listed after the watch exists, so no file slips between the two.
                known.formUnion(try directory.pluginFiles())
            }
        } catch {
            close(inotify)
            close(wake[0])
            close(wake[1])
            throw error
        }

        core = Core(inotify: inotify, wakeReader: wake[0], wakeWriter: wake[1])
        core.start(watches: watches, known: known, settle: settle, onChange: onChange)
    }

    /// Stops watching: the thread ends, the descriptors are closed, and a report being delivered
    /// on another thread is waited for. Idempotent; safe to call from inside `onChange` (that
    /// call then finishes, and no other follows).
    public func stop() {
        core.stop()
    }

    deinit {
        core.stop()
    }
}

extension FolderWatcher {
    /// What the watcher thread and `stop()` share. The thread holds this, not the watcher, so a
    /// dropped watcher is deinitialised (and so stopped) while the thread still runs.
    private final class Core: Sendable {
        let inotify: Int32
        let wakeReader: Int32
        let wakeWriter: Int32
        let queue = DispatchQueue(label: "cynic.folder-watcher")
        let exited = DispatchGroup()
        let state = Mutex(State())

        struct State {
            var stopped = false
            /// The thread running `onChange` right now, so that `stop()` called from it does not
            /// wait for itself.
            var reporter: pthread_t?
        }

        init(inotify: Int32, wakeReader: Int32, wakeWriter: Int32) {
            self.inotify = inotify
            self.wakeReader = wakeReader
            self.wakeWriter = wakeWriter
        }

        func start(watches: [Int32: [PluginDirectory]], known: Set<String>, settle: Duration,
                   onChange: @escaping @Sendable ([String]) -> Void) {
            exited.enter()
            let thread = Thread { [self] in
                run(watches: watches, known: known, settle: settle) { batch in
                    // Asynchronous, so a slow receiver never holds up reading: the kernel queue
                    // would overflow and lose events.
                    self.queue.async { self.report(batch, to: onChange) }
                }
                exited.leave()
            }
            thread.name = "cynic.folder-watcher"
            thread.start()
        }

        private func report(_ batch: [String], to onChange: @Sendable ([String]) -> Void) {
            let live = state.withLock { state in
                if !state.stopped { state.reporter = pthread_self() }
                return !state.stopped
            }
            guard live else { return }
            onChange(batch)
            state.withLock { $0.reporter = nil }
        }

        func stop() {
            let first = state.withLock { state in
                defer { state.stopped = true }
                return !state.stopped
            }
            if first {
                var byte: UInt8 = 1
                _ = write(wakeWriter, &byte, 1)
            }
            exited.wait()
            if first {
                // Only now: a descriptor closed while the thread may still use it could be reused
                // by an unrelated open.
                close(inotify)
                close(wakeReader)
                close(wakeWriter)
            }
            let insideReport = state.withLock { state in
                state.reporter.map { pthread_equal($0, pthread_self()) != 0 } ?? false
            }
            // A report already running on the queue finishes before stop returns; those queued
            // behind it see `stopped` and do nothing.
            if !insideReport { queue.sync {} }
        }

        /// The watcher thread: blocks in poll until an event, a settle deadline or the wake-up.
        private func run(watches: [Int32: [PluginDirectory]], known: Set<String>, settle: Duration,
                         deliver: ([String]) -> Void) {
            var watches = watches
            var known = known
            // Deadline per path: an event pushes its path's deadline back, so a path is reported
            // once, after `settle` without events for it.
            var pending: [String: ContinuousClock.Instant] = [:]
            let bufferSize = 64 * 1024
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: MemoryLayout<inotify_event>.alignment)
            defer { buffer.deallocate() }

            while true {
                var descriptors = [pollfd(fd: inotify, events: Int16(POLLIN), revents: 0),
                                   pollfd(fd: wakeReader, events: Int16(POLLIN), revents: 0)]
                let timeout = pending.values.min().map(Self.milliseconds(until:)) ?? -1
                let ready = poll(&descriptors, 2, timeout)
                if ready < 0 {
                    if errno == EINTR { continue }
                    return
                }
                if descriptors[1].revents != 0 { return }
                if descriptors[0].revents & Int16(POLLIN) != 0 {
                    let count = read(inotify, buffer, bufferSize)
                    if count < 0, errno != EINTR, errno != EAGAIN { return }
                    let deadline = ContinuousClock.now + settle
                    Self.forEachEvent(in: UnsafeRawBufferPointer(start: buffer, count: max(count, 0))) { descriptor, mask, name in
                        if mask & UInt32(IN_Q_OVERFLOW) != 0 {
                            // Events were lost: every plugin file there is, or was when last seen,
                            // may have changed. The receiver compares with what it loaded.
                            var everything = known
                            for directory in watches.values.joined() {
                                everything.formUnion((try? directory.pluginFiles()) ?? [])
                            }
                            for path in everything { pending[path] = deadline }
                            return
                        }
                        if mask & UInt32(IN_IGNORED) != 0 {
                            watches[descriptor] = nil
                            return
                        }
                        guard mask & UInt32(IN_ISDIR) == 0, let directories = watches[descriptor] else { return }
                        for directory in directories where directory.counts(name) {
                            let path = directory.path + "/" + name
                            if mask & UInt32(IN_CREATE) != 0, !Self.appearsWhole(path) { continue }
                            // A rename is atomic: the file is whole the moment it appears, so it
                            // is reported without the settle a file written in place needs.
                            pending[path] = mask & UInt32(IN_MOVED_TO) != 0 ? ContinuousClock.now : deadline
                        }
                    }
                } else if descriptors[0].revents != 0 {
                    return
                }

                let now = ContinuousClock.now
                let due = pending.filter { $0.value <= now }.keys.sorted()
                guard !due.isEmpty else { continue }
                for path in due {
                    pending[path] = nil
                    var status = stat()
                    if lstat(path, &status) == 0 { known.insert(path) } else { known.remove(path) }
                }
                deliver(due)
            }
        }

        /// A regular file created by `open` is followed by IN_CLOSE_WRITE once written, and is
        /// reported then. Anything else — a symbolic or hard link, a FIFO, a socket, a device —
        /// appears whole and gets no further event: report it now (the loader refuses what is
        /// not a plugin, with its reason).
        private static func appearsWhole(_ path: String) -> Bool {
            var status = stat()
            guard lstat(path, &status) == 0 else { return false }  // already gone: IN_DELETE follows
            return status.st_mode & S_IFMT != S_IFREG || status.st_nlink > 1
        }

        /// Walks the events `read` returned, checking every length against the bytes there are.
        private static func forEachEvent(in bytes: UnsafeRawBufferPointer,
                                         _ body: (_ descriptor: Int32, _ mask: UInt32, _ name: String) -> Void) {
            let header = MemoryLayout<inotify_event>.size
            var offset = 0
            while offset + header <= bytes.count {
                let event = bytes.loadUnaligned(fromByteOffset: offset, as: inotify_event.self)
                let nameLength = Int(event.len)
                guard offset + header + nameLength <= bytes.count else { return }
                // `name` is not imported: it follows the header, NUL-padded to `len` bytes.
                let nameBytes = UnsafeRawBufferPointer(rebasing: bytes[(offset + header)..<(offset + header + nameLength)])
                let name = String(decoding: nameBytes.prefix(while: { $0 != 0 }), as: UTF8.self)
                body(event.wd, event.mask, name)
                offset += header + nameLength
            }
        }

        /// A poll timeout reaching `deadline`, rounded up so the wake-up is never early.
        private static func milliseconds(until deadline: ContinuousClock.Instant) -> Int32 {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return 0 }
            let (seconds, attoseconds) = left.components
            let milliseconds = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
            return Int32(clamping: milliseconds)
        }
    }
}

extension PluginDirectory {
    /// The rule of `pluginFiles()`, for one name.
    fileprivate func counts(_ name: String) -> Bool {
        name.hasPrefix(prefix) && name.hasSuffix(".so") && !name.hasPrefix(".")
    }
}
