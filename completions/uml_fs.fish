# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_uml_fs_global_optspecs
    string join \n no-replay h/help V/version
end

function __fish_uml_fs_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_uml_fs_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_uml_fs_using_subcommand
    set -l cmd (__fish_uml_fs_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c uml_fs -n "__fish_uml_fs_needs_command" -l no-replay -d 'Read the disk as it is, without replaying a journal that needs recovery'
complete -c uml_fs -n "__fish_uml_fs_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_fs -n "__fish_uml_fs_needs_command" -s V -l version -d 'Print version'
complete -c uml_fs -n "__fish_uml_fs_needs_command" -f -a "info" -d 'Superblock summary: features, clean or needs recovery, free space'
complete -c uml_fs -n "__fish_uml_fs_needs_command" -f -a "ls" -d 'List a directory'
complete -c uml_fs -n "__fish_uml_fs_needs_command" -f -a "cat" -d 'Write files\' contents to standard output'
complete -c uml_fs -n "__fish_uml_fs_needs_command" -f -a "stat" -d 'Show an inode\'s metadata'
complete -c uml_fs -n "__fish_uml_fs_needs_command" -f -a "find" -d 'List paths below PATH, optionally filtered by name and type'
complete -c uml_fs -n "__fish_uml_fs_needs_command" -f -a "extract" -d 'Copy a file or tree out to the host, keeping modes, times, symlinks, hard links and holes'
complete -c uml_fs -n "__fish_uml_fs_needs_command" -f -a "diff" -d 'What a COW changed compared with its backing file'
complete -c uml_fs -n "__fish_uml_fs_needs_command" -f -a "mount" -d 'Mount the disk\'s filesystem at DIR through FUSE, as a normal user'
complete -c uml_fs -n "__fish_uml_fs_needs_command" -f -a "umount" -d 'Unmount a `uml_fs mount` and wait until the filesystem is committed and clean'
complete -c uml_fs -n "__fish_uml_fs_needs_command" -f -a "put" -d 'Copy a host file or tree into the image (an existing file is replaced)'
complete -c uml_fs -n "__fish_uml_fs_needs_command" -f -a "mkdir" -d 'Create directories'
complete -c uml_fs -n "__fish_uml_fs_needs_command" -f -a "rm" -d 'Remove files (and with -r directory trees)'
complete -c uml_fs -n "__fish_uml_fs_needs_command" -f -a "mv" -d 'Rename or move (into DEST when it is a directory)'
complete -c uml_fs -n "__fish_uml_fs_needs_command" -f -a "ln" -d 'Make a hard link, or with -s a symbolic link'
complete -c uml_fs -n "__fish_uml_fs_needs_command" -f -a "chmod" -d 'Change permission bits (octal)'
complete -c uml_fs -n "__fish_uml_fs_needs_command" -f -a "chown" -d 'Change owner and group (UID[:GID], numeric)'
complete -c uml_fs -n "__fish_uml_fs_needs_command" -f -a "touch" -d 'Set access and modification times to now, creating empty files'
complete -c uml_fs -n "__fish_uml_fs_needs_command" -f -a "write" -d 'Replace a file\'s contents with standard input (creating it)'
complete -c uml_fs -n "__fish_uml_fs_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand info" -l no-replay -d 'Read the disk as it is, without replaying a journal that needs recovery'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand info" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand ls" -s l -d 'Long listing: type and mode, links, owner and group (numbers), size or device number, modification time (UTC), name and symlink target'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand ls" -s R -d 'List subdirectories recursively, each under a PATH: header'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand ls" -l no-replay -d 'Read the disk as it is, without replaying a journal that needs recovery'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand ls" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand cat" -l no-replay -d 'Read the disk as it is, without replaying a journal that needs recovery'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand cat" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand stat" -l no-replay -d 'Read the disk as it is, without replaying a journal that needs recovery'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand stat" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand find" -l name -d 'Only names matching the shell pattern GLOB (*, ?, [...], \\); also spelled -name' -r
complete -c uml_fs -n "__fish_uml_fs_using_subcommand find" -l type -d 'Only this type: f (regular file), d, l, c, b, p (FIFO) or s; also spelled -type' -r
complete -c uml_fs -n "__fish_uml_fs_using_subcommand find" -l no-replay -d 'Read the disk as it is, without replaying a journal that needs recovery'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand find" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand extract" -l no-replay -d 'Read the disk as it is, without replaying a journal that needs recovery'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand extract" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand diff" -l json -d 'Print a JSON array of {"path": ..., "change": ...} objects instead of text'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand diff" -l no-replay -d 'Read the disk as it is, without replaying a journal that needs recovery'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand diff" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand mount" -s o -d 'Mount options, comma-separated: ro, rw (default), allow_other, allow_root (both imply default_permissions), default_permissions, nosuid, suid, nodev, dev, noexec, exec, noatime, atime, sync, async, dirsync' -r
complete -c uml_fs -n "__fish_uml_fs_using_subcommand mount" -s f -d 'Stay in the foreground; SIGINT, SIGTERM or SIGHUP unmount'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand mount" -l no-replay -d 'Read the disk as it is, without replaying a journal that needs recovery'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand mount" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand umount" -l no-replay -d 'Read the disk as it is, without replaying a journal that needs recovery'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand umount" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand put" -l owner -d 'Owner and group of everything copied, instead of the host files\' owners' -r
complete -c uml_fs -n "__fish_uml_fs_using_subcommand put" -l dry-run -d 'Print what would change and leave the disk untouched'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand put" -l no-replay -d 'Read the disk as it is, without replaying a journal that needs recovery'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand put" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand mkdir" -l dry-run -d 'Print what would change and leave the disk untouched'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand mkdir" -s p -d 'Create missing parents; an existing directory is not an error'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand mkdir" -l no-replay -d 'Read the disk as it is, without replaying a journal that needs recovery'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand mkdir" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand rm" -l dry-run -d 'Print what would change and leave the disk untouched'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand rm" -s r -d 'Remove directories and everything below them'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand rm" -l no-replay -d 'Read the disk as it is, without replaying a journal that needs recovery'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand rm" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand mv" -l dry-run -d 'Print what would change and leave the disk untouched'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand mv" -l no-replay -d 'Read the disk as it is, without replaying a journal that needs recovery'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand mv" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand ln" -l dry-run -d 'Print what would change and leave the disk untouched'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand ln" -s s -d 'Make a symbolic link whose contents are TARGET'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand ln" -l no-replay -d 'Read the disk as it is, without replaying a journal that needs recovery'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand ln" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand chmod" -l dry-run -d 'Print what would change and leave the disk untouched'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand chmod" -l no-replay -d 'Read the disk as it is, without replaying a journal that needs recovery'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand chmod" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand chown" -l dry-run -d 'Print what would change and leave the disk untouched'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand chown" -l no-replay -d 'Read the disk as it is, without replaying a journal that needs recovery'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand chown" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand touch" -l dry-run -d 'Print what would change and leave the disk untouched'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand touch" -l no-replay -d 'Read the disk as it is, without replaying a journal that needs recovery'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand touch" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand write" -l dry-run -d 'Print what would change and leave the disk untouched'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand write" -l no-replay -d 'Read the disk as it is, without replaying a journal that needs recovery'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand write" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand help; and not __fish_seen_subcommand_from info ls cat stat find extract diff mount umount put mkdir rm mv ln chmod chown touch write help" -f -a "info" -d 'Superblock summary: features, clean or needs recovery, free space'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand help; and not __fish_seen_subcommand_from info ls cat stat find extract diff mount umount put mkdir rm mv ln chmod chown touch write help" -f -a "ls" -d 'List a directory'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand help; and not __fish_seen_subcommand_from info ls cat stat find extract diff mount umount put mkdir rm mv ln chmod chown touch write help" -f -a "cat" -d 'Write files\' contents to standard output'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand help; and not __fish_seen_subcommand_from info ls cat stat find extract diff mount umount put mkdir rm mv ln chmod chown touch write help" -f -a "stat" -d 'Show an inode\'s metadata'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand help; and not __fish_seen_subcommand_from info ls cat stat find extract diff mount umount put mkdir rm mv ln chmod chown touch write help" -f -a "find" -d 'List paths below PATH, optionally filtered by name and type'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand help; and not __fish_seen_subcommand_from info ls cat stat find extract diff mount umount put mkdir rm mv ln chmod chown touch write help" -f -a "extract" -d 'Copy a file or tree out to the host, keeping modes, times, symlinks, hard links and holes'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand help; and not __fish_seen_subcommand_from info ls cat stat find extract diff mount umount put mkdir rm mv ln chmod chown touch write help" -f -a "diff" -d 'What a COW changed compared with its backing file'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand help; and not __fish_seen_subcommand_from info ls cat stat find extract diff mount umount put mkdir rm mv ln chmod chown touch write help" -f -a "mount" -d 'Mount the disk\'s filesystem at DIR through FUSE, as a normal user'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand help; and not __fish_seen_subcommand_from info ls cat stat find extract diff mount umount put mkdir rm mv ln chmod chown touch write help" -f -a "umount" -d 'Unmount a `uml_fs mount` and wait until the filesystem is committed and clean'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand help; and not __fish_seen_subcommand_from info ls cat stat find extract diff mount umount put mkdir rm mv ln chmod chown touch write help" -f -a "put" -d 'Copy a host file or tree into the image (an existing file is replaced)'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand help; and not __fish_seen_subcommand_from info ls cat stat find extract diff mount umount put mkdir rm mv ln chmod chown touch write help" -f -a "mkdir" -d 'Create directories'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand help; and not __fish_seen_subcommand_from info ls cat stat find extract diff mount umount put mkdir rm mv ln chmod chown touch write help" -f -a "rm" -d 'Remove files (and with -r directory trees)'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand help; and not __fish_seen_subcommand_from info ls cat stat find extract diff mount umount put mkdir rm mv ln chmod chown touch write help" -f -a "mv" -d 'Rename or move (into DEST when it is a directory)'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand help; and not __fish_seen_subcommand_from info ls cat stat find extract diff mount umount put mkdir rm mv ln chmod chown touch write help" -f -a "ln" -d 'Make a hard link, or with -s a symbolic link'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand help; and not __fish_seen_subcommand_from info ls cat stat find extract diff mount umount put mkdir rm mv ln chmod chown touch write help" -f -a "chmod" -d 'Change permission bits (octal)'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand help; and not __fish_seen_subcommand_from info ls cat stat find extract diff mount umount put mkdir rm mv ln chmod chown touch write help" -f -a "chown" -d 'Change owner and group (UID[:GID], numeric)'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand help; and not __fish_seen_subcommand_from info ls cat stat find extract diff mount umount put mkdir rm mv ln chmod chown touch write help" -f -a "touch" -d 'Set access and modification times to now, creating empty files'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand help; and not __fish_seen_subcommand_from info ls cat stat find extract diff mount umount put mkdir rm mv ln chmod chown touch write help" -f -a "write" -d 'Replace a file\'s contents with standard input (creating it)'
complete -c uml_fs -n "__fish_uml_fs_using_subcommand help; and not __fish_seen_subcommand_from info ls cat stat find extract diff mount umount put mkdir rm mv ln chmod chown touch write help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
