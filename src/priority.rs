//! Background threads that must not compete with the traced application
//! for CPU (the compressor, the exporters) run at a lower scheduling
//! priority: on a host whose cores are all busy, the application's threads
//! are served first and these use what is left. Their queues are bounded,
//! so falling behind costs counted drops, never the application's time.

/// Lowers the calling thread's priority (nice 10). Linux only; elsewhere,
/// and when the system refuses, the priority stays as it was.
#[cfg(target_os = "linux")]
pub fn yield_to_application() {
    // SAFETY: plain system calls on the calling thread's own id; a failure
    // only leaves the priority as it was.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

#[cfg(not(target_os = "linux"))]
pub fn yield_to_application() {}
