<?php
/*
 * Plugin Name: Lab Wishlist
 * Notes the wishlist in the checkout order.
 */
add_filter('lab_checkout_order', function ($order) {
    $order['notes'][] = 'from wishlist';
    return $order;
});
