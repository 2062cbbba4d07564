<?php
/*
 * Plugin Name: Lab Shipping Rates
 * A broken plugin update: it calls a helper that the new version no longer ships.
 */
$pages['/shop/checkout'] = function () {
    $rate = lab_shipping_legacy_rate('DE', 2.5);
    return "Shipping: {$rate}\n";
};
