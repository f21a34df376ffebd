//! What the daemon tells its service manager (sd_notify, `Type=notify`): readiness,
//! reloads, the stop, and a one-line `STATUS=` that `systemctl status` shows — how many
//! downstream ports proxy and how many bindings are confirmed. Without `NOTIFY_SOCKET`
//! (not started by systemd) every call is a no-op.

use sd_notify::NotifyState;

use crate::engine::Summary;

/// The daemon's side of the conversation; remembers the last `STATUS=` it sent so an
/// unchanged line is not sent again every second.
#[derive(Debug, Default)]
pub(super) struct ServiceManager {
    last_status: String,
}

impl ServiceManager {
    /// Start-up (or a reload) is complete: every port captured, the control socket up.
    pub(super) fn ready(&self) {
        let _ = sd_notify::notify(&[NotifyState::Ready]);
    }

    pub(super) fn reloading(&self) {
        let _ = sd_notify::notify(&[NotifyState::Reloading]);
    }

    pub(super) fn stopping(&self) {
        let _ = sd_notify::notify(&[NotifyState::Stopping]);
    }

    /// Sends the status line for `summary` when it differs from the last one sent.
    pub(super) fn status(&mut self, summary: &Summary) {
        let line = status_line(summary);
        if line != self.last_status {
            let _ = sd_notify::notify(&[NotifyState::Status(&line)]);
            self.last_status = line;
        }
    }
}

/// `proxying on 1 of 2 downstream ports; 5 bindings confirmed, 7 learned`: the two
/// figures an operator checks first. When a port does not proxy, `ndprelay status` says
/// why; the line points there rather than trying to fit the reason in.
pub(super) fn status_line(s: &Summary) -> String {
    let ports = if s.downstream == 1 { "port" } else { "ports" };
    let bindings = if s.confirmed == 1 {
        "binding"
    } else {
        "bindings"
    };
    let mut line = format!(
        "proxying on {} of {} downstream {ports}; {} {bindings} confirmed, {} learned",
        s.proxying, s.downstream, s.confirmed, s.bindings
    );
    if s.proxying < s.downstream {
        line.push_str(" (`ndprelay status` says why a port waits)");
    }
    line
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn the_line_gives_ports_proxying_and_bindings_confirmed() {
        let s = Summary {
            downstream: 2,
            proxying: 2,
            bindings: 7,
            confirmed: 5,
        };
        assert_eq!(
            status_line(&s),
            "proxying on 2 of 2 downstream ports; 5 bindings confirmed, 7 learned"
        );
    }

    #[test]
    fn a_waiting_port_points_at_status() {
        let s = Summary {
            downstream: 1,
            proxying: 0,
            bindings: 1,
            confirmed: 1,
        };
        assert_eq!(
            status_line(&s),
            "proxying on 0 of 1 downstream port; 1 binding confirmed, 1 learned \
             (`ndprelay status` says why a port waits)"
        );
    }
}
