//! The scripts of `sparkboot submit`: receive an application's files into a fresh private
//! directory, run `spark-submit` from it, and clean it away.
//!
//! Everything happens **as the account Spark jobs run as** (the layout's `user`, `spark`):
//! its home is that user's, so root acting there would act through a path a less privileged
//! user controls (see [`super::guard`]). Acting as that user instead gives the submission
//! exactly the rights any of its jobs has, and leaves the files owned by the user who reads
//! them. The directory is `<user_home>/submit/<id>` with a controller-chosen random id, made
//! with `mkdir` (never reused: an existing one is an error) under a umask of 077, so 0700.
//!
//! `spark-submit` reads the master's address, the auth secret and the cipher from
//! `<home>/conf/spark-defaults.conf` (root:spark 0640, which the job user reads through its
//! group); sparkboot passes only the master URL and the user's own flags, so the secret is
//! never in anyone's argv.

use super::{as_user, join, quote};
use crate::spark::layout::Layout;

/// Where submissions are received on a node.
pub fn base_dir(layout: &Layout) -> String {
    format!("{}/submit", layout.user_home)
}

/// The directory of submission `id`.
pub fn submission_dir(layout: &Layout, id: &str) -> String {
    format!("{}/{id}", base_dir(layout))
}

/// Makes the submission's directory (0700, the job user's) and unpacks the tar archive that
/// arrives on stdin into it. Prints `dir=<path>`.
pub fn receive(layout: &Layout, id: &str) -> String {
    let body = "umask 077 && mkdir -p -- \"$1\" && mkdir -- \"$2\" && tar -x --no-same-owner --no-same-permissions -f - -C \"$2\" && echo \"dir=$2\"";
    format!(
        "cd / || exit 1\n{}",
        as_user(
            &layout.user,
            &format!(
                "sh -c {} sb {} {}",
                quote(body),
                quote(&base_dir(layout)),
                quote(&submission_dir(layout, id))
            )
        )
    )
}

/// Runs `argv` (spark-submit and its arguments) as the job user from the submission's
/// directory, and removes the directory afterwards, whatever happened. The script's stdin is
/// the controller's lifeline: when it reaches EOF before the job has ended (sparkboot was
/// interrupted or its session dropped), spark-submit gets SIGTERM (runuser passes it on; the
/// driver's shutdown hooks stop the application). Exits with spark-submit's status.
///
/// The wrapper catches SIGPIPE with a no-op: once the controller has gone, the first write to
/// the channel's closed pipes (the shell's own job report, say) would otherwise end it before
/// it removes the directory. A caught signal is reset at exec, so the job is unaffected.
pub fn run(layout: &Layout, id: &str, argv: &[String]) -> String {
    let dir = submission_dir(layout, id);
    let job = as_user(
        &layout.user,
        &format!("cd {} && exec {}", quote(&dir), join(argv)),
    );
    let cleanup = as_user(&layout.user, &format!("rm -rf -- {}", quote(&dir)));
    format!(
        r#"cd / || exit 1
trap : PIPE
exec 3<&0
{job} </dev/null &
sb_job=$!
{{ cat >/dev/null; kill -TERM "$sb_job" 2>/dev/null; }} <&3 >/dev/null 2>&1 &
sb_watch=$!
exec 3<&-
wait "$sb_job"; sb_rc=$?
kill "$sb_watch" 2>/dev/null
{cleanup} >/dev/null 2>&1
exit "$sb_rc""#
    )
}

/// Removes the submission's directory (when the upload itself failed half way).
pub fn remove(layout: &Layout, id: &str) -> String {
    format!(
        "cd / || exit 1\n{}",
        as_user(
            &layout.user,
            &format!("rm -rf -- {}", quote(&submission_dir(layout, id)))
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spark::layout::tests::builtin;

    #[test]
    fn everything_runs_as_the_job_user_and_every_word_is_quoted() {
        let l = builtin();
        let r = receive(&l, "abc123");
        assert!(r.contains(&format!("runuser -u {} --", l.user)), "{r}");
        assert!(r.contains("umask 077"), "{r}");
        let argv = vec![
            format!("{}/bin/spark-submit", l.home),
            "--name".to_string(),
            "it's; rm -rf /".to_string(),
            "app.py".to_string(),
        ];
        let s = run(&l, "abc123", &argv);
        assert!(s.starts_with("cd / || exit 1"), "{s}");
        assert!(!s.contains("it's; rm -rf /'"), "an unquoted argument: {s}");
        assert!(s.contains("rm -rf --"), "{s}");
        assert!(s.contains("exit \"$sb_rc\""), "{s}");
    }

    #[test]
    fn the_run_script_exits_with_the_jobs_status_and_cleans_up() {
        // The script's shape with the real sh: a stand-in layout whose user is the current one
        // (root in CI, where `runuser` is skipped for root), a job that fails with 3.
        let dir = tempfile::tempdir().expect("tempdir");
        let mut l = builtin();
        l.user = "root".into();
        l.user_home = dir.path().display().to_string();
        let me = std::process::Command::new("id")
            .arg("-u")
            .output()
            .expect("id");
        if String::from_utf8_lossy(&me.stdout).trim() != "0" {
            return; // as_user with "root" runs the command directly: only meaningful as root
        }
        let run_case = |id: &str, job: &str, hold_stdin: bool| {
            let sub = submission_dir(&l, id);
            std::fs::create_dir_all(&sub).expect("mkdir");
            let argv = vec!["sh".to_string(), "-c".to_string(), job.to_string()];
            let mut child = std::process::Command::new("sh")
                .arg("-c")
                .arg(run(&l, id, &argv))
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("sh");
            // The controller keeps stdin open while it waits; dropping it is what an
            // interrupted sparkboot (or a dropped session) looks like from the node.
            let mut stdin = child.stdin.take();
            if !hold_stdin {
                drop(stdin.take());
            }
            let out = child.wait_with_output().expect("wait");
            drop(stdin);
            assert!(
                !std::path::Path::new(&sub).exists(),
                "{id}: the dir was not removed"
            );
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        };
        assert_eq!(
            run_case("t1", "echo out; exit 3", true),
            (Some(3), "out\n".into())
        );
        // Stdin closed at once: the stand-in for spark-submit (which execs java, as this execs
        // sleep) is sent SIGTERM (143), and the dir is removed.
        let (code, _) = run_case("t2", "exec sleep 30", false);
        assert_eq!(code, Some(143));
    }
}
