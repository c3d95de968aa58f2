"""The run engine: bounded-concurrency async execution with retries, caching and resume."""

from airisk.engine.retry import RateLimiter, RetryPolicy, call_with_retries
from airisk.engine.runner import execute, judge_run, new_run_id, resume_run, run_items

__all__ = ["RateLimiter", "RetryPolicy", "call_with_retries", "execute", "judge_run", "new_run_id", "resume_run",
           "run_items"]
