//! `thwonk jobs`: the job queues on Redis as an operator sees them: depths, claimed, stalled
//! (dead letters, with their last error), and retrying or dropping stalled jobs.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use std::process::ExitCode;
use thwonk_core::Config;
use thwonk_thoonk::{JobQueue, Redis};

#[derive(Subcommand)]
pub enum JobsAction {
    /// Stalled jobs of QUEUE, with attempts and last error.
    Stalled {
        queue: String,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Put stalled jobs back in their queue (attempts forgotten).
    Retry {
        queue: String,
        /// Job ids; none with --all.
        ids: Vec<String>,
        /// Every stalled job of the queue.
        #[arg(long)]
        all: bool,
    },
    /// Remove stalled jobs for good.
    Drop {
        queue: String,
        ids: Vec<String>,
        #[arg(long)]
        all: bool,
    },
}

async fn connect(config: &Config) -> Result<Redis> {
    let url = config.redis_url();
    Redis::connect(&url)
        .await
        .with_context(|| format!("is Redis running at {url}? (`thwonk serve` starts it)"))
}

pub async fn jobs(config: &Config, action: Option<JobsAction>) -> Result<ExitCode> {
    let redis = connect(config).await?;
    match action {
        None => {
            println!(
                "{:<20} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}",
                "queue",
                "queued",
                "claiming",
                "claimed",
                "delayed",
                "stalled",
                "published",
                "finished"
            );
            for name in thwonk_thoonk::reaper::job_queue_names(&redis).await? {
                let s = JobQueue::new(&redis, &name).stats().await?;
                println!(
                    "{:<20} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}",
                    s.name,
                    s.queued,
                    s.claiming,
                    s.claimed,
                    s.delayed,
                    s.stalled,
                    s.publishes,
                    s.finishes
                );
            }
        }
        Some(JobsAction::Stalled { queue, limit }) => {
            let stalled = JobQueue::new(&redis, &queue).stalled(limit).await?;
            if stalled.is_empty() {
                println!("no stalled jobs in {queue}");
            }
            for j in stalled {
                println!(
                    "{}\t{} attempts\t{}\t{}",
                    j.id,
                    j.attempts,
                    j.error.as_deref().unwrap_or("-"),
                    j.payload.as_deref().unwrap_or("(no payload)")
                );
            }
        }
        Some(JobsAction::Retry { queue, ids, all }) => {
            let q = JobQueue::new(&redis, &queue);
            for id in chosen(&q, ids, all).await? {
                q.retry(&id).await?;
                println!("retrying {id}");
            }
        }
        Some(JobsAction::Drop { queue, ids, all }) => {
            let q = JobQueue::new(&redis, &queue);
            for id in chosen(&q, ids, all).await? {
                if !q.stalled(usize::MAX).await?.iter().any(|j| j.id == id) {
                    bail!("{id} is not a stalled job of {queue}");
                }
                q.retract(&id).await?;
                println!("dropped {id}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The ids named, or with `--all` every stalled one.
async fn chosen(q: &JobQueue, ids: Vec<String>, all: bool) -> Result<Vec<String>> {
    match (all, ids.is_empty()) {
        (true, true) => Ok(q
            .stalled(usize::MAX)
            .await?
            .into_iter()
            .map(|j| j.id)
            .collect()),
        (false, false) => Ok(ids),
        (true, false) => bail!("give job ids or --all, not both"),
        (false, true) => bail!("give job ids, or --all for every stalled job"),
    }
}
