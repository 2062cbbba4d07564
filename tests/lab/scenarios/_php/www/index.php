<?php
// triage502 lab shop: a tiny front controller in the style of a CMS.
// Plugins under wp-content/plugins/*/plugin.php may register pages.
$pages = [];
foreach (glob(__DIR__ . '/wp-content/plugins/*/plugin.php') as $plugin) {
    require_once $plugin;
}
$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH);
if (isset($pages[$path])) {
    echo $pages[$path]();
} elseif ($path === '/report') {
    // A slow report: three seconds of "work".
    sleep(3);
    echo "report ready\n";
} else {
    echo "<!doctype html><title>Lab shop</title><h1>Lab shop</h1><p><a href=\"/shop/checkout\">Checkout</a></p>\n";
}
