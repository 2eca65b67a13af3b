//! Each workload's own fields, after the common schema
//! ([`RecordGen::record`] writes that and calls one of these): Azure AD,
//! Exchange, SharePoint, General (Teams, Power BI, Forms) and DLP.

use super::json::{iso, J};
use super::{Meta, RecordGen, AGENTS, USERS};

impl RecordGen {
    pub(super) fn azure_ad(
        &mut self,
        j: &mut J<'_>,
        op: &str,
        user_id: &str,
        ip: &str,
        m: &Meta<'_>,
    ) {
        let (user_guid, app) = (self.guid(), self.guid());
        j.n(
            "AzureActiveDirectoryEventType",
            if op == "Add user." { 1 } else { 0 },
        );
        if op == "Add user." {
            let request = self.guid();
            j.nv(
                "ExtendedProperties",
                &[
                    (
                        "additionalDetails",
                        &format!("{{\"UserType\":\"Member\",\"RequestId\":\"{request}\",\"Notes\":\"created by \\\"HR sync\\\"\"}}"),
                    ),
                    ("extendedAuditEventCategory", "User"),
                ],
            );
            let fields = 2 + self.below(4);
            let names = [
                "AccountEnabled",
                "DisplayName",
                "UserPrincipalName",
                "StsRefreshTokensValidFrom",
                "UserType",
                "Department",
            ];
            j.raw("ModifiedProperties", &{
                let mut s = String::from("[");
                for (i, name) in names.iter().take(fields).enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    let new = match *name {
                        "AccountEnabled" => "[\r\n  true\r\n]".to_string(),
                        "StsRefreshTokensValidFrom" => {
                            format!("[\r\n  \"{}Z\"\r\n]", iso(m.creation))
                        }
                        _ => format!("[\r\n  \"{user_id}\"\r\n]"),
                    };
                    let mut o = J::obj(&mut s);
                    o.s("Name", name);
                    o.s("NewValue", &new);
                    o.s("OldValue", "[]");
                    o.end();
                }
                s.push(']');
                s
            });
        } else {
            let agent = self.pick(AGENTS);
            let mut ext = vec![
                (
                    "ResultStatusDetail",
                    if op == "UserLoginFailed" {
                        "UserError"
                    } else {
                        "Redirect"
                    },
                ),
                ("UserAgent", agent),
                ("UserAuthenticationMethod", "1"),
                ("RequestType", "OAuth2:Authorize"),
            ];
            if self.below(2) == 0 {
                ext.push(("KeepMeSignedIn", "true"));
            }
            j.nv("ExtendedProperties", &ext);
            j.raw("ModifiedProperties", "[]");
        }
        j.arr("Actor", 2, |i, a| {
            if i == 0 {
                a.s("ID", &user_guid);
                a.n("Type", 0);
            } else {
                a.s("ID", user_id);
                a.n("Type", 5);
            }
        });
        j.s("ActorContextId", m.tenant_id);
        j.s("ActorIpAddress", ip);
        j.s("InterSystemsId", &self.guid());
        j.s("IntraSystemId", &self.guid());
        j.s("SupportTicketId", "");
        j.arr("Target", 1 + self.below(3), |i, t| {
            t.s("ID", if i == 0 { &app } else { &user_guid });
            t.n("Type", 0);
        });
        j.s("TargetContextId", m.tenant_id);
        j.s("ApplicationId", &app);
        if op != "Add user." {
            let session = self.guid();
            j.nv(
                "DeviceProperties",
                &[
                    ("OS", self.pick(&["Windows 10", "MacOs", "Ios", "Android"])),
                    ("BrowserType", self.pick(&["Edge", "Chrome", "Safari"])),
                    ("IsCompliantAndManaged", "False"),
                    ("SessionId", &session),
                ],
            );
            let failed = op == "UserLoginFailed";
            j.s("ErrorNumber", if failed { "50126" } else { "0" });
            if failed {
                j.s("LogonError", "InvalidUserNameOrPassword");
            }
        }
    }

    pub(super) fn exchange(&mut self, j: &mut J<'_>, op: &str, user_id: &str, ip: &str) {
        let server = format!(
            "AM6PR0{}MB{:04} (15.20.7{:03}.000)\r\n",
            self.below(9),
            self.below(9999),
            self.below(999)
        );
        j.s("AppId", &self.guid());
        j.s("ClientAppId", "");
        j.s("ClientIPAddress", ip);
        j.s(
            "ClientInfoString",
            self.pick(&[
                "Client=OWA;Action=ViaProxy",
                "Client=REST;Client=RESTSystem;;",
                "Client=MSExchangeRPC",
            ]),
        );
        j.b("ExternalAccess", false);
        j.n("InternalLogonType", 0);
        j.n("LogonType", 0);
        j.s(
            "LogonUserSid",
            &format!(
                "S-1-5-21-{}-{}-{}-{}",
                self.below(999_999_999),
                self.below(999_999_999),
                self.below(999_999_999),
                1000 + self.below(9000)
            ),
        );
        j.s("MailboxGuid", &self.guid());
        j.s("MailboxOwnerUPN", user_id);
        j.s("OrganizationName", "contoso.onmicrosoft.com");
        j.s("OriginatingServer", &server);
        j.s("SessionId", &self.guid());
        match op {
            "MailItemsAccessed" => {
                j.nv(
                    "OperationProperties",
                    &[("MailAccessType", "Bind"), ("IsThrottled", "False")],
                );
                let folders = 1 + self.below(2);
                let items: Vec<usize> = (0..folders).map(|_| 1 + self.below(4)).collect();
                let ids: Vec<String> = (0..items.iter().sum::<usize>())
                    .map(|_| self.hex(16))
                    .collect();
                let mut n = 0;
                j.arr("Folders", folders, |f, o| {
                    o.arr("FolderItems", items[f], |_, it| {
                        it.s(
                            "InternetMessageId",
                            &format!(
                                "<AM6PR01MB{}@AM6PR01MB1234.eurprd01.prod.outlook.com>",
                                ids[n]
                            ),
                        );
                        it.n("SizeInBytes", 4_096 + (n as i64 * 7_919) % 90_000);
                        n += 1;
                    });
                    o.s(
                        "Id",
                        &format!("LgAAAAAdhAMRqmYRzZvIAKoAL8RaDQB{}AAAAAAEMAAAB", ids[0]),
                    );
                    o.s(
                        "Path",
                        if f == 0 {
                            "\\Inbox"
                        } else {
                            "\\Archive\\2026 – Q4"
                        },
                    );
                });
                j.n("OperationCount", items.iter().sum::<usize>() as i64);
            }
            "Send" => {
                let (item, mid) = (self.hex(16), self.hex(12));
                j.o("Item", |o| {
                    o.s(
                        "Id",
                        &format!("RgAAAAAdhAMRqmYRzZvIAKoAL8RaBwB{item}AAAAAAEJAAA"),
                    );
                    o.s(
                        "InternetMessageId",
                        &format!("<{mid}@AM6PR01MB1234.eurprd01.prod.outlook.com>"),
                    );
                    o.o("ParentFolder", |p| {
                        p.s(
                            "Id",
                            &format!("LgAAAAAdhAMRqmYRzZvIAKoAL8RaAQB{item}AAAAAAEJAAAB"),
                        );
                        p.s("Path", "\\Sent Items");
                    });
                    o.n("SizeInBytes", 20_000 + (item.len() as i64) * 311);
                    // An escaped non-ASCII character, as some clients send it.
                    o.raw(
                        "Subject",
                        "\"Re: Caf\\u00e9 \\\"Q4\\\" numbers – naïve forecast\"",
                    );
                });
            }
            _ => {
                let words = [
                    "invoice", "payment", "wire", "urgent", "docusign", "password",
                ];
                let k = 2 + self.below(4);
                j.nv(
                    "Parameters",
                    &[
                        ("AlwaysDeleteOutlookRulesBlob", "False"),
                        ("Force", "False"),
                        ("MoveToFolder", "RSS Feeds"),
                        ("Name", "."),
                        ("SubjectOrBodyContainsWords", &words[..k].join(";")),
                        ("StopProcessingRules", "True"),
                    ],
                );
            }
        }
    }

    pub(super) fn sharepoint(&mut self, j: &mut J<'_>, object_id: &str) {
        let (file, folder) = match object_id.rsplit_once('/') {
            Some((dir, f)) => (f.to_string(), dir.to_string()),
            None => (object_id.to_string(), String::new()),
        };
        let site_url = folder
            .split("/Shared Documents")
            .next()
            .unwrap_or_default()
            .to_string();
        j.s("CorrelationId", &self.guid());
        j.s("EventSource", "SharePoint");
        j.s("ItemType", "File");
        j.s("ListId", &self.guid());
        j.s("ListItemUniqueId", &self.guid());
        j.s("Site", &self.guid());
        j.s("UserAgent", self.pick(AGENTS));
        j.s("WebId", &self.guid());
        j.b("HighPriorityMediaProcessing", false);
        j.n("ListBaseType", 1);
        j.n("ListServerTemplate", 101);
        j.s(
            "SourceFileExtension",
            file.rsplit('.').next().unwrap_or_default(),
        );
        j.s("SiteUrl", &format!("{site_url}/"));
        j.s("SourceFileName", &file);
        j.s("SourceRelativeUrl", "Shared Documents");
        j.s("GeoLocation", "EUR");
        j.b("IsManagedDevice", self.below(2) == 0);
        j.s("AuthenticationType", "OAuth");
        j.s("BrowserName", "Edge");
        j.s("Platform", "WinDesktop");
        app_access(j, "Office 365 SharePoint Online");
    }

    pub(super) fn general(&mut self, j: &mut J<'_>, workload: &str, user_id: &str) {
        j.s("CorrelationId", &self.guid());
        j.s("DeviceId", &self.guid());
        j.s("UserAgent", self.pick(AGENTS));
        app_access(j, workload);
        match workload {
            "PowerBI" => {
                j.s("Activity", "ViewReport");
                j.s("ItemName", "Sales – Q4 “pipeline”");
                j.s("WorkSpaceName", "Finance Analytics");
                j.s("DatasetName", "Sales 2026");
                j.s("ReportName", "Pipeline by region");
                j.s("WorkspaceId", &self.guid());
                j.s("DatasetId", &self.guid());
                j.s("ReportId", &self.guid());
                j.s("ArtifactId", &self.guid());
                j.b("IsSuccess", true);
                j.s("ReportType", "PowerBIReport");
                j.s("RequestId", &self.guid());
                j.s("ActivityId", &self.guid());
                j.s("DistributionMethod", "Workspace");
                j.s("ConsumptionMethod", "Power BI Web");
                j.s("CapacityId", &self.guid());
                j.s("CapacityName", "Premium Per User - Reserved");
                j.s("DataConnectivityMode", "Import");
                j.s("ArtifactKind", "Report");
            }
            "MicrosoftForms" => {
                j.s("FormId", &format!("v4j5cvGGr0GRqy180BHbR{}", self.hex(12)));
                j.s("FormName", "Offsite 2026 – Anmeldung/inscription");
                j.s("FormTypes", "Form");
                j.s("SourceApp", "Microsoft Forms");
                j.n("ResponseId", self.below(500) as i64);
                j.s("FormsUserType", "Owner");
                j.s("FormOwner", user_id);
                let questions = 1 + self.below(4);
                let titles = [
                    "Name",
                    "Régime alimentaire / dietary needs",
                    "Arrival \"date\"",
                    "T-shirt size",
                    "Comments",
                ];
                j.arr("Questions", questions, |i, q| {
                    q.s("Title", titles[i]);
                    q.s("Type", if i == 0 { "Text" } else { "Choice" });
                    q.b("Required", i == 0);
                });
            }
            _ => {
                let members = 1 + self.below(4);
                let names: Vec<&str> = (0..members).map(|_| self.pick(USERS)).collect();
                j.arr("Members", members, |i, o| {
                    o.s("DisplayName", &names[i].replace('.', " "));
                    o.n("Role", (i % 2) as i64);
                    o.s("UPN", &format!("{}@contoso.com", names[i]));
                });
                j.s("TeamName", "Équipe Finance \\ Controlling");
                j.s("TeamGuid", &format!("19:{}@thread.tacv2", self.hex(16)));
                j.s("AADGroupId", &self.guid());
                j.s("CommunicationType", "Team");
                j.s("ItemName", "General");
                j.nv(
                    "ExtraProperties",
                    &[
                        ("TimeZone", "W. Europe Standard Time"),
                        ("OsName", "Windows"),
                        ("ClientType", "Desktop"),
                    ],
                );
                j.s("UserId", user_id);
            }
        }
    }

    pub(super) fn dlp(
        &mut self,
        j: &mut J<'_>,
        workload: &str,
        user_id: &str,
        object_id: &str,
        m: &Meta<'_>,
    ) {
        j.s("IncidentId", &self.guid());
        let (policy, rule, sit) = (self.guid(), self.guid(), self.guid());
        let count = 1 + self.below(40);
        let detections = count.min(1 + self.below(4));
        let values: Vec<String> = (0..detections)
            .map(|_| format!("4{:03}********{:04}", self.below(999), self.below(9999)))
            .collect();
        j.arr("PolicyDetails", 1, |_, p| {
            p.s("PolicyId", &policy);
            p.s("PolicyName", "U.S. Financial Data – “PCI”");
            p.arr("Rules", 1, |_, r| {
                r.raw("Actions", "[\"NotifyUser\",\"BlockAccess\"]");
                r.o("ConditionsMatched", |c| {
                    c.b("ConditionMatchedInNewScheme", true);
                    c.nv(
                        "OtherConditions",
                        &[(
                            "ContentContainsSensitiveInformation",
                            "{\"minCount\":1,\"maxCount\":-1}",
                        )],
                    );
                    c.arr("SensitiveInformation", 1, |_, s| {
                        s.s("ClassifierType", "Content");
                        s.n("Confidence", 85);
                        s.n("Count", count as i64);
                        s.s("Location", "");
                        s.o("SensitiveInformationDetections", |d| {
                            d.arr("DetectedValues", values.len(), |i, v| {
                                v.s("Name", "Credit Card Number");
                                v.s("Value", &values[i]);
                            });
                            d.b("ResultsTruncated", count > detections);
                        });
                        s.s("SensitiveInformationTypeName", "Credit Card Number");
                        s.s("SensitiveType", &sit);
                        s.n("UniqueCount", detections as i64);
                    });
                });
                r.s("ManagementRuleId", &rule);
                r.s("RuleId", &rule);
                r.s("RuleMode", "Enable");
                r.s("RuleName", "Low volume of content detected U.S. Financial");
                r.s("Severity", "Low");
            });
        });
        j.b("SensitiveInfoDetectionIsIncluded", true);
        if workload == "Exchange" {
            let to = self.pick(USERS);
            j.o("ExchangeMetaData", |e| {
                e.raw("BCC", "[]");
                e.raw("CC", "[]");
                e.n("FileSize", 31_337);
                e.s("From", user_id);
                e.s(
                    "MessageID",
                    "<AM6PR01MB1234ABCD@AM6PR01MB1234.eurprd01.prod.outlook.com>",
                );
                e.n("RecipientCount", 1);
                e.s("Sent", &iso(m.creation));
                e.s("Subject", "card numbers for the \"refund\"");
                e.raw("To", &format!("[\"{to}@fabrikam.com\"]"));
                e.s("UniqueID", "e1f2a3b4-0000-4000-8000-000000000000");
            });
        } else {
            let file = object_id.rsplit('/').next().unwrap_or_default().to_string();
            j.o("SharePointMetaData", |s| {
                s.s("From", user_id);
                s.s("FileID", "a1b2c3d4-0000-4000-8000-0000000000ff");
                s.s("FileName", &file);
                s.s("FilePathUrl", object_id);
                s.s("ItemCreationTime", &iso(m.creation - 86_400));
                s.s("ItemLastModifiedTime", &iso(m.creation));
                s.raw("SiteAdmin", "[\"admin@contoso.com\"]");
                s.s("SiteCollectionGuid", "5d6e7f80-91a2-4b3c-8d4e-5f6071829304");
                s.s(
                    "SiteCollectionUrl",
                    "https://contoso.sharepoint.com/sites/Finance",
                );
                s.s("UniqueID", "0a1b2c3d-4e5f-4061-8273-94a5b6c7d8e9");
            });
        }
    }
}

fn app_access(j: &mut J<'_>, app: &str) {
    j.o("AppAccessContext", |a| {
        a.s("ClientAppId", "00000003-0000-0ff1-ce00-000000000000");
        a.s("ClientAppName", app);
        a.s("CorrelationId", "a1b2c3d4-0000-4000-8000-000000000000");
        a.s("UniqueTokenId", "Yh6b1ZbQPEKbX9ETkm0dAA");
    });
}
