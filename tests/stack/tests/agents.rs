//! The real-agent mode's processes end with the stack, also when the test
//! that owns it panics.

use ferry_test_stack::{AgentMode, Stack, StackOptions};

#[test]
fn a_panicking_test_leaves_no_agent_process_behind() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let result = std::thread::spawn(move || {
        let stack = Stack::start_with(StackOptions { instances: 2, agent: AgentMode::Real, ..Default::default() });
        for agent in stack.agents() {
            record.lock().unwrap().extend(agent.processes());
        }
        panic!("the test fails while its agents run");
    })
    .join();
    assert!(result.is_err());
    let pids = seen.lock().unwrap().clone();
    // The watchdog shell, a master and a child per agent, at least.
    assert!(pids.len() >= 6, "{pids:?}");
    // A zombie has ended; only its parent (init, here) has yet to reap it.
    let running = |p: &i32| {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    };
    let alive: Vec<i32> = pids.iter().copied().filter(running).collect();
    assert!(alive.is_empty(), "agent processes left running: {alive:?}");
}
