/*
 * fast_state.h -- tell whether the core ran in its fast state during a sample.
 *
 * The shared virtual machines these figures come from switch each core
 * between a fast and a slow state (about 1.7x apart) every fraction of a
 * second to a few seconds (see DESIGN.md, "Measuring on these machines").
 * A probe is a fixed, register-only chain of dependent integer adds: its
 * duration depends on nothing but the core's speed. The driver times one
 * probe just before and one just after each sample and keeps the sample only
 * if both ran at (near) the fastest probe time seen.
 *
 * fast_state_run_delay_ns() below catches the other disturbance: waiting
 * for a core that another process holds.
 *
 * Also built as a small shared library (libsoftmax_bench_probe.so) so that
 * torch_bench.py applies the very same filter through ctypes.
 */
#ifndef SOFTMAX_BENCH_FAST_STATE_H
#define SOFTMAX_BENCH_FAST_STATE_H

/* A probe counts as fast when it takes at most this times the fastest probe
 * seen: the fast state itself drifts by up to ~15% here, the slow state is
 * ~1.7x. */
#define FAST_STATE_TOLERANCE 1.3

/* Nanoseconds taken by one probe (~12 us in the fast state here) on the
 * calling thread. */
double fast_state_probe_ns(void);

/* Runs probes for about `seconds` and returns the fastest probe time seen. */
double fast_state_calibrate(double seconds);

/* Monotonic clock in nanoseconds. */
double fast_state_now_ns(void);

/* The other half of a clean sample: on a 2-core machine shared with other
 * jobs, a thread of ours may sit runnable while another process holds its
 * core, and a multi-thread call then waits for a time slice (milliseconds).
 * The probes cannot see that; the scheduler can. This returns the total time
 * the threads of this process have spent waiting on a run queue (the second
 * field of /proc/self/task/ * /schedstat), in ns, or -1 where the kernel does
 * not say. A sample counts only if this grows by at most
 * FAST_STATE_MAX_WAIT of the sample's duration. */
double fast_state_run_delay_ns(void);
/* A sample is delayed by at most the time its threads waited (a worker that
 * waits holds the others at the next barrier, no longer): 5% is well inside
 * the fast state's own drift. */
#define FAST_STATE_MAX_WAIT 0.05

#endif /* SOFTMAX_BENCH_FAST_STATE_H */
