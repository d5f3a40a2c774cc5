complete -c uml_moo -s b -l backing -d 'Use BACKING instead of the backing file named in the COW header' -r -F
complete -c uml_moo -s d -l in-place -d 'Merge in place: write the COW\'s sectors into the backing file instead of writing a new image'
complete -c uml_moo -l reset-cow -d 'With -d: afterwards empty the COW and record the merged backing file\'s new mtime, so the guest can go on booting from it'
complete -c uml_moo -l force -d 'With -d: merge even into a backing file that has no filesystem or partition table signature (one that does not look like a disk image)'
complete -c uml_moo -l no-sync -d 'Do not fsync the result (faster; not safe against power loss)'
complete -c uml_moo -s q -l quiet -d 'No progress bar, and with -d no line saying which file is written'
complete -c uml_moo -s h -l help -d 'Print help (see more with \'--help\')'
complete -c uml_moo -s V -l version -d 'Print version'
