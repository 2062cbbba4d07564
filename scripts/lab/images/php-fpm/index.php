<?php
// The container lab's PHP site: "ok" from php-fpm; ?fatal=1 calls an undefined function.
if (isset($_GET['fatal'])) {
    undefined_function_of_the_lab();
}
header('Content-Type: text/plain');
echo "ok from php-fpm " . gethostname() . "\n";
