# keychaind_install_configured(): installs a file whose text names installed paths (the units'
# ExecStart, the p11-kit module file's module:). It is written at install time from the prefix
# installed into, so `cmake --install --prefix /usr` and the .deb (prefix /usr) name the files
# they actually install, not the configure-time default /usr/local.
#   keychaind_install_configured(TEMPLATE DESTINATION [RENAME name])
function(keychaind_install_configured template destination)
    cmake_parse_arguments(PARSE_ARGV 2 arg "" "RENAME" "")
    get_filename_component(name "${template}" NAME_WLE)
    if(arg_RENAME)
        set(name "${arg_RENAME}")
    endif()
    set(out "${CMAKE_CURRENT_BINARY_DIR}/installed/${name}")
    # \${CMAKE_INSTALL_PREFIX} is read when the install script runs; the rest is fixed now.
    install(CODE "
        set(KEYCHAIND_SBIN \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SBINDIR}\")
        set(KEYCHAIND_DOC_DIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DOCDIR}\")
        set(KEYCHAIND_PKCS11_MODULE_PATH \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkcs11/libkeychaind-pkcs11.so\")
        configure_file(\"${template}\" \"${out}\" @ONLY)")
    install(FILES "${out}" DESTINATION "${destination}")
endfunction()
