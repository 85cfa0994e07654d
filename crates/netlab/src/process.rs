use std::process::Child;

/// A child process that is killed and reaped when the guard drops.
#[derive(Debug)]
pub struct Guarded {
    child: Child,
}

impl Guarded {
    pub fn new(child: Child) -> Guarded {
        Guarded { child }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Sends a signal by name (`TERM`, `STOP`, `CONT`, `KILL`, ...) using kill(1), so no
    /// unsafe code is needed here.
    pub fn signal(&self, signal: &str) -> std::io::Result<()> {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "kill -{signal} {} failed",
                self.child.id()
            )))
        }
    }

    /// Whether the process has exited (reaping it if so).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
