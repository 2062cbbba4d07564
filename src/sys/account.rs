//! Names of users and groups from `/etc/passwd` and `/etc/group` (the
//! files, not NSS: LDAP users show as numbers, which is what we can know
//! without linking libc's resolver).

use std::path::Path;

/// `/etc/passwd` and `/etc/group` read once, for walks over many processes.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    passwd: String,
    group: String,
}

impl Accounts {
    pub fn load() -> Self {
        Accounts {
            passwd: super::read_text(Path::new("/etc/passwd")).unwrap_or_default(),
            group: super::read_text(Path::new("/etc/group")).unwrap_or_default(),
        }
    }

    pub fn user(&self, uid: u32) -> Option<String> {
        parse_name(&self.passwd, uid)
    }

    pub fn group(&self, gid: u32) -> Option<String> {
        parse_name(&self.group, gid)
    }
}

/// The name of `uid` in `/etc/passwd`, if listed.
pub fn user_name(uid: u32) -> Option<String> {
    name_in(Path::new("/etc/passwd"), uid)
}

/// The name of `gid` in `/etc/group`, if listed.
pub fn group_name(gid: u32) -> Option<String> {
    name_in(Path::new("/etc/group"), gid)
}

/// The uid of a user name in `/etc/passwd`.
pub fn user_id(name: &str) -> Option<u32> {
    id_in(Path::new("/etc/passwd"), name)
}

/// The gid of a group name in `/etc/group`.
pub fn group_id(name: &str) -> Option<u32> {
    id_in(Path::new("/etc/group"), name)
}

/// The primary gid of a user in `/etc/passwd`.
pub fn primary_gid(name: &str) -> Option<u32> {
    let text = super::read_text(Path::new("/etc/passwd")).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        f.nth(2)?.parse().ok()
    })
}

fn name_in(file: &Path, id: u32) -> Option<String> {
    let text = super::read_text(file).ok()?;
    parse_name(&text, id)
}

fn id_in(file: &Path, name: &str) -> Option<u32> {
    let text = super::read_text(file).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

/// `name:x:id:...` lines; the first line with the id wins, as in getpwuid.
pub fn parse_name(text: &str, id: u32) -> Option<String> {
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let found: u32 = f.nth(1)?.parse().ok()?;
        (found == id).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_entry_with_the_id_wins() {
        let t = "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\nalias:x:33:33::/:/bin/sh\n";
        assert_eq!(parse_name(t, 33).as_deref(), Some("www-data"));
        assert_eq!(parse_name(t, 0).as_deref(), Some("root"));
        assert_eq!(parse_name(t, 7), None);
    }

    #[test]
    fn root_is_known_here() {
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert_eq!(user_id("root"), Some(0));
    }
}
