<?php
/*
 * Plugin Name: Lab Shipping Rates
 * Adds a flat shipping rate to the checkout order.
 */
add_filter('lab_checkout_order', function ($order) {
    $order['items'][] = 4.90;
    return $order;
});
