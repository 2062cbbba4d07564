<?php
// triage502 lab scenario nginx_upstream_oom: a report that builds its whole export in memory.
// 512 MiB is within PHP's memory_limit (1024M in this pool) but far past the 96 MiB memory
// cgroup the pool runs in, so the kernel's OOM killer kills the worker mid-request.
$export = str_repeat('x', 512 * 1024 * 1024);
echo strlen($export), "\n";
