<?php
/*
 * Plugin Name: Lab Cart Totals
 * A buggy plugin: the checkout total recurses without a base case. Each level goes through
 * array_map (C code), so the C stack overflows and the php-fpm worker dies with SIGSEGV before
 * PHP's memory limit is reached.
 */
function lab_cart_total(array $items)
{
    return array_sum(array_map('lab_cart_total', [$items]));
}

$pages['/shop/checkout'] = function () {
    return 'Total: ' . lab_cart_total([19.99, 5.00]) . "\n";
};
