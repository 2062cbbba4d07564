<?php
// triage502 lab: a WordPress-like front controller for the plugin-bisection scenario.
//
// Like wp-settings.php, it loads the main file of every plugin in the `active_plugins` option,
// wp-content/plugins/SLUG/SLUG.php, and skips one whose file is missing: WordPress then treats the
// plugin as inactive. That is why renaming a plugin's directory (SLUG.disabled-by-triage502, what
// triage502 does without wp-cli) disables it, and renaming it back enables it again.
$active_plugins = [
    'lab-analytics/lab-analytics.php',
    'lab-contact-form/lab-contact-form.php',
    'lab-order-notes/lab-order-notes.php',
    'lab-seo-meta/lab-seo-meta.php',
    'lab-shipping-rates/lab-shipping-rates.php',
    'lab-wishlist/lab-wishlist.php',
];

// A minimal filter API in the style of add_filter()/apply_filters().
$lab_filters = [];
function add_filter(string $hook, callable $fn): void
{
    global $lab_filters;
    $lab_filters[$hook][] = $fn;
}
function apply_filters(string $hook, $value)
{
    global $lab_filters;
    foreach ($lab_filters[$hook] ?? [] as $fn) {
        $value = $fn($value);
    }
    return $value;
}

$loaded = [];
foreach ($active_plugins as $main) {
    $file = __DIR__ . '/wp-content/plugins/' . $main;
    if (is_file($file)) {
        include_once $file;
        $loaded[] = dirname($main);
    }
}

$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH);
if ($path === '/shop/checkout') {
    $order = apply_filters('lab_checkout_order', ['items' => [19.99, 5.00], 'notes' => []]);
    $total = array_sum($order['items']);
    echo "<!doctype html><title>Checkout</title><h1>Checkout</h1><p>Total: {$total}</p>\n";
} else {
    $head = apply_filters('lab_head', '');
    echo "<!doctype html><title>Lab shop</title>{$head}<h1>Lab shop</h1><p><a href=\"/shop/checkout\">Checkout</a></p>\n";
}
echo '<!-- active plugins: ' . implode(', ', $loaded) . " -->\n";
