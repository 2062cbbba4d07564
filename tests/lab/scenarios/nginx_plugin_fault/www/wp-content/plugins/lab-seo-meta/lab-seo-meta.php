<?php
/*
 * Plugin Name: Lab SEO Meta
 * Adds a description meta tag to the page head.
 */
add_filter('lab_head', function ($head) {
    return $head . '<meta name="description" content="Lab shop">';
});
