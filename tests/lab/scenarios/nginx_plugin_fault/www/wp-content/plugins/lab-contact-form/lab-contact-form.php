<?php
/*
 * Plugin Name: Lab Contact Form
 * Adds a stylesheet for its form to the page head.
 */
add_filter('lab_head', function ($head) {
    return $head . '<link rel="stylesheet" href="/wp-content/plugins/lab-contact-form/form.css">';
});
