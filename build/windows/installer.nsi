; Lastseen's Windows installer: per user, no administrator rights.
;
; makensis -NOCD -DVERSION=… -DNUMVERSION=a.b.c.d -DDIST=<dir with the .exe>
;          -DOUTFILE=<setup.exe> build/windows/installer.nsi   (make dist-windows)
;
; Lays down the three programs under %LOCALAPPDATA%\Programs\Lastseen, a
; Start-menu shortcut, optionally the agent's start at login (the same Run
; value the agent's own setting writes) and an uninstaller registered for
; "Apps & features". Silent: /S (and /NOAUTOSTART to leave start at login
; off). The uninstaller removes all of that; the data (%AppData%\lastseen:
; history, settings, device token) stays unless the user says so, or
; /REMOVEDATA is given to a silent uninstall.

Unicode true
; makensis builds a 32-bit installer by default; 64-bit it is, like the
; programs it carries (a 32-bit one also fails under a 64-bit-only Wine).
Target amd64-unicode
SetCompressor /SOLID lzma
RequestExecutionLevel user

!ifdef VERSION & NUMVERSION & DIST & OUTFILE
!else
  !error "define VERSION, NUMVERSION, DIST and OUTFILE (see make dist-windows)"
!endif

!define PRODUCT      "Lastseen"
!define UNINSTKEY    "Software\Microsoft\Windows\CurrentVersion\Uninstall\Lastseen"
; backend/autostart: the Run value and Explorer's record of it, both named
; RunValueName.
!define RUNKEY       "Software\Microsoft\Windows\CurrentVersion\Run"
!define APPROVEDKEY  "Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run"
!define RUNVALUE     "Lastseen"
; The choice made here, so that the agent's first run does not offer (and
; turn on) start at login again (app/cmd/lastseen-agent).
!define CHOICEKEY    "Software\Lastseen"
!define CHOICEVALUE  "InstallerStartAtLogin"

Name "${PRODUCT}"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\Lastseen"
; An upgrade goes where the last install went.
InstallDirRegKey HKCU "${UNINSTKEY}" "InstallLocation"
ShowInstDetails nevershow
ShowUninstDetails nevershow

VIProductVersion "${NUMVERSION}"
VIFileVersion "${NUMVERSION}"
VIAddVersionKey "ProductName" "${PRODUCT}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${PRODUCT} installer"
VIAddVersionKey "CompanyName" "${PRODUCT}"
VIAddVersionKey "LegalCopyright" "Lastseen contributors"

!include "MUI2.nsh"
!include "LogicLib.nsh"
!include "FileFunc.nsh"
!include "Sections.nsh"

!define MUI_ICON   "${__FILEDIR__}\icon.ico"
!define MUI_UNICON "${__FILEDIR__}\icon.ico"
!define MUI_COMPONENTSPAGE_NODESC
!define MUI_FINISHPAGE_RUN "$INSTDIR\lastseen.exe"
!define MUI_FINISHPAGE_RUN_TEXT "Open Lastseen"

!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

; StopRunning stops a running window and agent of this install, so their
; files can be replaced or removed: politely first (WM_CLOSE; the agent then
; sends its final offline beat), by force after five seconds. A program's
; file can be deleted once it has exited, which is what the loop waits for.
!macro StopRunningFn prefix
Function ${prefix}StopRunning
  Push "lastseen.exe"
  Call ${prefix}StopOne
  Push "lastseen-agent.exe"
  Call ${prefix}StopOne
FunctionEnd

Function ${prefix}StopOne
  Exch $R0 ; the program's file name
  Push $R1
  IfFileExists "$INSTDIR\$R0" 0 done
  nsExec::Exec '"$SYSDIR\taskkill.exe" /IM $R0'
  Pop $R1
  StrCpy $R1 0
  wait:
    ClearErrors
    Delete "$INSTDIR\$R0"
    IfErrors 0 done
    IntOp $R1 $R1 + 1
    IntCmp $R1 50 force
    Sleep 100
    Goto wait
  force:
    nsExec::Exec '"$SYSDIR\taskkill.exe" /F /IM $R0'
    Pop $R1
    Sleep 500
  done:
  Pop $R1
  Pop $R0
FunctionEnd
!macroend
!insertmacro StopRunningFn ""
!insertmacro StopRunningFn "un."

Section "Lastseen" SecMain
  SectionIn RO
  SetShellVarContext current
  Call StopRunning
  SetOutPath "$INSTDIR"
  File "${DIST}\lastseen.exe"
  File "${DIST}\lastseen-agent.exe"
  File "${DIST}\lastseend.exe"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  CreateShortcut "$SMPROGRAMS\Lastseen.lnk" "$INSTDIR\lastseen.exe" "" "$INSTDIR\lastseen.exe" 0 \
    SW_SHOWNORMAL "" "See who is around, and let them see you"

  WriteRegStr HKCU "${UNINSTKEY}" "DisplayName" "${PRODUCT}"
  WriteRegStr HKCU "${UNINSTKEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTKEY}" "Publisher" "${PRODUCT}"
  WriteRegStr HKCU "${UNINSTKEY}" "DisplayIcon" "$INSTDIR\lastseen.exe,0"
  WriteRegStr HKCU "${UNINSTKEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTKEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKCU "${UNINSTKEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKCU "${UNINSTKEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTKEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  IntFmt $0 "0x%08X" $0
  WriteRegDWORD HKCU "${UNINSTKEY}" "EstimatedSize" "$0"
SectionEnd

; The agent's own "Start at login" setting reads and writes the same value,
; so either place may change it later.
Section "Start Lastseen when I sign in" SecLogin
  WriteRegStr HKCU "${RUNKEY}" "${RUNVALUE}" '"$INSTDIR\lastseen-agent.exe"'
  DeleteRegValue HKCU "${APPROVEDKEY}" "${RUNVALUE}"
  WriteRegDWORD HKCU "${CHOICEKEY}" "${CHOICEVALUE}" 1
SectionEnd

; Unticked on an upgrade means no longer.
Section "-login off"
  ${IfNot} ${SectionIsSelected} ${SecLogin}
    DeleteRegValue HKCU "${RUNKEY}" "${RUNVALUE}"
    DeleteRegValue HKCU "${APPROVEDKEY}" "${RUNVALUE}"
    WriteRegDWORD HKCU "${CHOICEKEY}" "${CHOICEVALUE}" 0
  ${EndIf}
SectionEnd

; /NOAUTOSTART unticks start at login, for silent installs.
Function .onInit
  ${GetParameters} $R0
  ClearErrors
  ${GetOptions} $R0 "/NOAUTOSTART" $R1
  ${IfNot} ${Errors}
    !insertmacro UnselectSection ${SecLogin}
  ${EndIf}
FunctionEnd

Var RemoveData

Function un.onInit
  StrCpy $RemoveData 0
  ${GetParameters} $R0
  ClearErrors
  ${GetOptions} $R0 "/REMOVEDATA" $R1
  ${IfNot} ${Errors}
    StrCpy $RemoveData 1
  ${EndIf}
FunctionEnd

Section "Uninstall"
  SetShellVarContext current
  Call un.StopRunning
  Delete "$INSTDIR\lastseen.exe"
  Delete "$INSTDIR\lastseen-agent.exe"
  Delete "$INSTDIR\lastseend.exe"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  Delete "$SMPROGRAMS\Lastseen.lnk"
  DeleteRegValue HKCU "${RUNKEY}" "${RUNVALUE}"
  DeleteRegValue HKCU "${APPROVEDKEY}" "${RUNVALUE}"
  DeleteRegKey HKCU "${UNINSTKEY}"
  DeleteRegKey HKCU "${CHOICEKEY}"

  ; The data: the agent's and the window's (app.DefaultDataDir), the
  ; dashboard's WebView2 profile among them. Kept unless asked; a silent
  ; uninstall keeps it unless /REMOVEDATA.
  ${If} $RemoveData = 0
  ${AndIfNot} ${Silent}
    MessageBox MB_YESNO|MB_ICONQUESTION|MB_DEFBUTTON2 \
      "Also delete your Lastseen data (history, settings and this device's sign-in) in $APPDATA\lastseen?$\r$\n$\r$\nKeep it to pick up where you left off after a reinstall." \
      /SD IDNO IDNO +2
    StrCpy $RemoveData 1
  ${EndIf}
  ${If} $RemoveData = 1
    RMDir /r "$APPDATA\lastseen"
  ${EndIf}
SectionEnd
