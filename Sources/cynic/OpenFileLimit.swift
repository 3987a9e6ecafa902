#if canImport(Glibc)
import Glibc
#endif

/// Every connection cynic holds is a descriptor, and holding many at once — idle, stalled,
/// never answered — is its job. The soft limit a shell hands out (often 1024) is far below the
/// hard one, so the server raises it, as nginx's `worker_rlimit_nofile` and Go's runtime do.
/// Returns the limits before and after, or nil when nothing changed (already at the hard limit,
/// or the call failed: the server then runs with what it has).
func raiseOpenFileLimit() -> (before: rlim_t, after: rlim_t)? {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return nil }
    let before = limit.rlim_cur
    limit.rlim_cur = limit.rlim_max
    guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
    return (before, limit.rlim_cur)
}
