# The Debian package: `cpack -G DEB` in a build tree (packaging/build-deb) makes
# keychaind_<version>_<arch>.deb, everything under /usr, /lib and /etc (never /usr/local);
# its maintainer scripts are in packaging/debian/.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME keychaind)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "keychaind developers <dev@keychaind.local>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "hardware-backed key service for local servers")
set(CPACK_PACKAGE_DESCRIPTION "keychaind holds a machine's secret keys in locked memory and lets \
local servers sign and unwrap with them over a Unix socket without holding them. Keys come from \
*.4DKeyChain files on USB sticks (through udev), PEM files and PKCS#11 tokens. The package holds \
the daemon, its systemd units, keychainctl, libkeychain with its headers, and a PKCS#11 module \
registered with p11-kit for unmodified TLS servers.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
# Binaries as Debian ships them: stripped, with Depends from the libraries they link.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
# systemd: the units, and systemd-sysusers / systemd-tmpfiles in postinst.
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd")
# udev delivers the USB sticks; p11-kit's tools list the PKCS#11 module.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "udev, p11-kit")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_CURRENT_SOURCE_DIR}/debian/conffiles
    ${CMAKE_CURRENT_SOURCE_DIR}/debian/postinst
    ${CMAKE_CURRENT_SOURCE_DIR}/debian/prerm
    ${CMAKE_CURRENT_SOURCE_DIR}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
