<?php
/*
 * Plugin Name: Lab Analytics
 * Adds a tracking snippet to the page head.
 */
add_filter('lab_head', function ($head) {
    return $head . "<script>/* lab analytics */</script>";
});
