<?php
/*
 * Plugin Name: Lab Order Notes
 * The faulty plugin: its checkout hook crashes the PHP worker, the way a buggy native extension
 * call does. The worker dies with SIGSEGV in the middle of the request, so php-fpm logs
 * `child N exited on signal 11 (SIGSEGV)` and nginx answers 502. Other pages never run the hook.
 */
add_filter('lab_checkout_order', function ($order) {
    // 11 is SIGSEGV on Linux (the pcntl constants are not loaded in php-fpm).
    posix_kill(getmypid(), 11);
    $order['notes'][] = 'gift wrap';
    return $order;
});
